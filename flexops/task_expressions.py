"""TaskRouter's expression language: workflow filter expressions, target expressions and TaskQueue
`target_workers`, parsed and evaluated against JSON attributes.

Shared by the sandbox (routing) and flexops's own checks ("would this task reach a queue?"), so it is pure:
standard library only. The syntax is Twilio's (docs/taskrouter/expression-syntax): comparisons of constants and
JSON keys (`customer.tier == 'gold'`, `skills HAS 'support'`, `language IN ['en', 'es']`), grouped by parentheses
and joined by AND / OR. Where Twilio's page is silent the choices are written next to the code:

- keywords (AND, OR, IN, NOT IN, HAS, CONTAINS, true, false) are case-insensitive, as Twilio's own examples mix
  `IN` and `in`; the symbolic spellings `=`, `&&`, `||`, `->` (HAS) and `*>` (CONTAINS) are accepted too;
- a key the attributes lack resolves to NULL, and every comparison with NULL is false (`!=` and `NOT IN` too);
- values of different types never compare equal or ordered (`1 == '1'` and `true == 1` are false);
- string comparisons are case-sensitive; CONTAINS is a substring test (on a list: any string element).

`scopes` resolves prefixed keys: in a workflow target expression `task.` and `worker.` name the task's and the
worker's attributes (`matches(expr, worker_attrs, scopes={"task": task_attrs, "worker": worker_attrs})`).
"""
import functools
import re
from typing import NamedTuple

from .exceptions import FlexopsError, ValidationError


class ExpressionError(ValidationError):
    """An expression that cannot be parsed: names the expression, the position (0-based) and what is wrong."""

    def __init__(self, expression, position, reason):
        self.parameter = "expression"
        self.expression = expression
        self.position = position
        self.rule = reason
        self.value = expression
        FlexopsError.__init__(self, f"invalid TaskRouter expression {expression!r}: {reason} at position {position}")


class Key(NamedTuple):
    path: tuple  # names (str) and array indices (int)


class Compare(NamedTuple):
    op: str  # ==, !=, >, <, >=, <=, IN, NOT IN, HAS, CONTAINS
    left: object  # a constant, a list of constants, or a Key
    right: object


class Logical(NamedTuple):
    op: str  # AND, OR
    terms: tuple


_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<number>-?\d+(?:\.\d+)?(?![\w.]))
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*|\[\d+\])*)
  | (?P<symbol>==|!=|>=|<=|&&|\|\||->|\*>|[=<>()\[\],])
""", re.VERBOSE)
_SYMBOLS = {"=": "==", "&&": "AND", "||": "OR", "->": "HAS", "*>": "CONTAINS"}
_KEYWORDS = {"AND", "OR", "IN", "NOT", "HAS", "CONTAINS", "TRUE", "FALSE", "NULL"}
COMPARISONS = ("==", "!=", ">", "<", ">=", "<=", "IN", "NOT IN", "HAS", "CONTAINS")


class _Token(NamedTuple):
    kind: str  # string, number, key, op, end
    value: object
    position: int


def _tokens(expression):
    tokens, position = [], 0
    while position < len(expression):
        found = _TOKEN.match(expression, position)
        if found is None:
            char = expression[position]
            reason = "hyphens are not supported" if char == "-" else f"unexpected character {char!r}"
            raise ExpressionError(expression, position, reason)
        kind, text = found.lastgroup, found.group()
        if kind == "string":
            tokens.append(_Token("string", re.sub(r"\\(.)", r"\1", text[1:-1]), position))
        elif kind == "number":
            tokens.append(_Token("number", float(text) if "." in text else int(text), position))
        elif kind == "word" and text.upper() in _KEYWORDS:
            word = text.upper()
            if word in ("TRUE", "FALSE"):
                tokens.append(_Token("bool", word == "TRUE", position))
            elif word == "NULL":
                tokens.append(_Token("null", None, position))
            else:
                tokens.append(_Token("op", word, position))
        elif kind == "word":
            path = tuple(int(part[1:-1]) if part.startswith("[") else part
                         for part in re.findall(r"\[\d+\]|[^.\[\]]+", text))
            tokens.append(_Token("key", Key(path), position))
        elif kind == "symbol":
            tokens.append(_Token("op", _SYMBOLS.get(text, text), position))
        position = found.end()
    tokens.append(_Token("end", None, len(expression)))
    return tokens


class _Parser:
    def __init__(self, expression):
        self.expression = expression
        self.tokens = _tokens(expression)
        self.at = 0

    def peek(self):
        return self.tokens[self.at]

    def take(self):
        token = self.tokens[self.at]
        self.at += 1
        return token

    def fail(self, token, reason):
        shown = "the end of the expression" if token.kind == "end" else repr(self._text(token))
        raise ExpressionError(self.expression, token.position, f"{reason}, found {shown}")

    def _text(self, token):
        following = next(t.position for t in self.tokens if t.position > token.position)
        return self.expression[token.position:following].strip()

    def is_op(self, *values):
        token = self.peek()
        return token.kind == "op" and token.value in values

    def expect(self, value, reason):
        if not self.is_op(value):
            self.fail(self.peek(), reason)
        return self.take()

    def parse(self):
        if self.peek().kind == "end":
            raise ExpressionError(self.expression, 0, "the expression is empty")
        tree = self.disjunction()
        if self.peek().kind != "end":
            self.fail(self.peek(), "expected AND, OR or the end of the expression")
        return tree

    def disjunction(self):
        terms = [self.conjunction()]
        while self.is_op("OR"):
            self.take()
            terms.append(self.conjunction())
        return terms[0] if len(terms) == 1 else Logical("OR", tuple(terms))

    def conjunction(self):
        terms = [self.primary()]
        while self.is_op("AND"):
            self.take()
            terms.append(self.primary())
        return terms[0] if len(terms) == 1 else Logical("AND", tuple(terms))

    def primary(self):
        if self.is_op("("):
            self.take()
            inner = self.disjunction()
            self.expect(")", "expected ')'")
            return inner
        left = self.operand()
        token = self.peek()
        if self.is_op("NOT"):
            self.take()
            self.expect("IN", "expected IN after NOT")
            op = "NOT IN"
        elif token.kind == "op" and token.value in COMPARISONS:
            op = self.take().value
        else:
            self.fail(token, "expected a comparison operator (==, !=, >, <, >=, <=, IN, NOT IN, HAS, CONTAINS)")
        return Compare(op, left, self.operand())

    def operand(self):
        token = self.peek()
        if token.kind in ("string", "number", "bool", "null", "key"):
            return self.take().value
        if self.is_op("["):
            return self.array()
        self.fail(token, "expected a constant, a list or an attribute key")

    def array(self):
        self.take()
        items = []
        while not self.is_op("]"):
            token = self.peek()
            if token.kind not in ("string", "number", "bool", "null"):
                self.fail(token, "expected a constant in the list")
            items.append(self.take().value)
            if not self.is_op("]"):
                self.expect(",", "expected ',' or ']' in the list")
        self.take()
        return items


def parse(expression):
    """The expression's tree (Compare / Logical nodes); ExpressionError when it cannot be parsed."""
    if not isinstance(expression, str):
        raise ExpressionError(repr(expression), 0, "an expression must be a string")
    return _parse(expression)


@functools.lru_cache(maxsize=1024)
def _parse(expression):
    return _Parser(expression).parse()


_MISSING = object()


def _resolve(value, attributes, scopes):
    if isinstance(value, list):
        return value
    if not isinstance(value, Key):
        return value
    path = value.path
    if scopes and path[0] in scopes:
        current, path = scopes[path[0]], path[1:]
    else:
        current = attributes
    for part in path:
        if isinstance(part, int) and isinstance(current, list) and part < len(current):
            current = current[part]
        elif isinstance(part, str) and isinstance(current, dict) and part in current:
            current = current[part]
        else:
            return _MISSING
    return current


def _kind(value):
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    return "other"


def _equal(left, right):
    return _kind(left) == _kind(right) and _kind(left) in ("bool", "number", "string") and left == right


def _compare(op, left, right):
    if left is _MISSING or right is _MISSING or left is None or right is None:
        return False
    if op == "==":
        return _equal(left, right)
    if op == "!=":
        return _kind(left) == _kind(right) and not _equal(left, right)
    if op in (">", "<", ">=", "<="):
        if _kind(left) != _kind(right) or _kind(left) not in ("number", "string"):
            return False
        return {">": left > right, "<": left < right, ">=": left >= right, "<=": left <= right}[op]
    if op in ("IN", "NOT IN"):
        if not isinstance(right, list):
            return False
        lefts = left if isinstance(left, list) else [left]
        found = any(_equal(a, b) for a in lefts for b in right)
        return found if op == "IN" else not found
    if op == "HAS":
        return isinstance(left, list) and any(_equal(item, right) for item in left)
    if op == "CONTAINS":
        if not isinstance(right, str):
            return False
        if isinstance(left, list):
            return any(isinstance(item, str) and right in item for item in left)
        return isinstance(left, str) and right in left
    raise ValueError(f"unknown operator {op}")


def evaluate(tree, attributes, scopes=None):
    """Evaluate a parsed tree against `attributes` (see `matches`)."""
    if isinstance(tree, Logical):
        results = (evaluate(term, attributes, scopes) for term in tree.terms)
        return all(results) if tree.op == "AND" else any(results)
    return _compare(tree.op, _resolve(tree.left, attributes, scopes), _resolve(tree.right, attributes, scopes))


def matches(expression, attributes, scopes=None):
    """Whether `attributes` (a JSON object) satisfy `expression`; keys starting with a name in `scopes` (e.g.
    `task`, `worker`) resolve in that scope's dict instead. ExpressionError when it cannot be parsed."""
    return evaluate(parse(expression), attributes if isinstance(attributes, dict) else {}, scopes)
