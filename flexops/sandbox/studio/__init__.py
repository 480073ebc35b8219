"""Studio v2: models (flows, revisions, executions, steps), engine (running a definition), responses, urls."""
