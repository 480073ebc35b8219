"""Progress bars for long work: shown on a terminal, or when asked; no bar object at all when asked for none.

Why not a disabled tqdm: even a disabled one takes tqdm's process-wide locks when it is made and closed, and a
fleet's fifty concurrent verifications queue on them.
"""
from tqdm.auto import tqdm


class NoBar:
    """What the code under a bar calls, doing nothing."""

    def update(self, n=1):
        pass

    def set_postfix_str(self, *args, **kwargs):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def bar(progress, **kwargs):
    """`progress` None: tqdm decides (shown on a terminal only); True: shown; False: NoBar."""
    if progress is False:
        return NoBar()
    return tqdm(disable=None if progress is None else not progress, **kwargs)
