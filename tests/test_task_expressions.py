"""TaskRouter's expression language: Twilio's documented examples, the choices where Twilio is silent, and
errors that name the expression and the position."""
import pytest

from flexops.exceptions import ValidationError
from flexops.task_expressions import ExpressionError, matches, parse

TASK = {"type": "ticket", "customer_value": "Gold", "skill_rating": 6, "language": "fr", "channelType": "messenger",
        "customer": {"tier": "gold", "tags": ["vip", "returning"]},
        "object": {"array": ["a", "b", "c"], "attr": "bar"}, "email": "ana@example.com", "flag": True}


@pytest.mark.parametrize("expression, expected", [
    ("1 == 1", True), ("1==1", True), ("0 != 1", True), ('"apple" != "orange"', True),
    ("customer_value == 'Gold' AND type == 'ticket'", True),
    ("customer_value == 'Gold' AND type == 'voice'", False),
    ("skill_rating > 1", True), ("skill_rating >= 6", True), ("skill_rating < 6", False),
    ("skill_rating <= 5.5", False),
    ('language IN ["en", "es"]', False), ("language IN ['en', 'fr']", True), ("language NOT IN ['en', 'es']", True),
    ("(language == 'en' OR language == 'fr') AND skill_rating >= 5.1", True),
    ("customer.tier == 'gold'", True), ("customer.tags HAS 'vip'", True), ("customer.tags HAS 'new'", False),
    ("object.array[2] == 'c'", True), ("object.array[7] == 'c'", False), ("object.attr != 'apple'", True),
    ("email CONTAINS 'example.com'", True), ("customer.tags CONTAINS 'turn'", True), ("email CONTAINS 'x.org'", False),
    ("flag == true", True), ("flag == 1", False), ("skill_rating == '6'", False),
    ("channelType = 'messenger'", True), ("channelType == 'facebook'", False),
    ("type == 'x' || skill_rating > 5 && language == 'fr'", True), ("customer.tags -> 'vip'", True),
    ("email *> 'ana'", True),
])
def test_twilios_operators(expression, expected):
    assert matches(expression, TASK) is expected


def test_keywords_are_case_insensitive():
    assert matches("language in ['fr'] and customer.tags has 'vip' or 1 == 2", TASK)
    assert matches("language not in ['en'] AND email contains 'ana' AND flag == TRUE", TASK)


def test_or_binds_looser_than_and():
    assert matches("1 == 2 AND 1 == 1 OR 1 == 1", {})
    assert not matches("1 == 2 AND (1 == 1 OR 1 == 1)", {})


def test_a_missing_key_is_null_and_every_comparison_with_it_is_false():
    for expression in ("missing == 'x'", "missing != 'x'", "missing NOT IN ['x']", "missing > 1",
                       "customer.missing.deeper == 1", "missing HAS 'x'", "missing CONTAINS 'x'"):
        assert matches(expression, TASK) is False, expression
    assert not matches("customer.tier.more == 'x'", TASK)


def test_scopes_resolve_task_and_worker_prefixes_in_target_expressions():
    worker = {"languages": ["fr", "en"], "agent_id": "ana"}
    task = {"language": "fr", "preferred_agents": ["ana", "bob"]}
    scopes = {"task": task, "worker": worker}
    assert matches("worker.languages HAS task.language", worker, scopes)
    assert matches("worker.agent_id IN task.preferred_agents", worker, scopes)
    assert matches("languages HAS 'en'", worker, scopes)  # unprefixed keys: the attributes being evaluated
    assert not matches("task.language == 'en'", worker, scopes)


@pytest.mark.parametrize("expression, position, reason", [
    ("", 0, "empty"),
    ("language ==", 11, "expected a constant, a list or an attribute key, found the end"),
    ("language 'fr'", 9, "expected a comparison operator"),
    ("(language == 'fr'", 17, "expected ')'"),
    ("language == 'fr' AND", 20, "expected a constant"),
    ("language == 'fr' 'x'", 17, "expected AND, OR"),
    ("customer-tier == 'gold'", 8, "hyphens are not supported"),
    ("language IN ['en' 'fr']", 18, "expected ',' or ']'"),
    ("language NOT 'fr'", 13, "expected IN after NOT"),
    ("language == 'fr' ; drop", 17, "unexpected character ';'"),
    ("type == 'unterminated", 8, "unexpected character"),
])
def test_unparseable_expressions_name_the_expression_and_position(expression, position, reason):
    with pytest.raises(ExpressionError) as raised:
        parse(expression)
    error = raised.value
    assert isinstance(error, ValidationError)  # flexops's own input errors
    assert error.position == position and error.expression == expression
    assert reason in str(error) and repr(expression) in str(error) and f"position {position}" in str(error)
    with pytest.raises(ExpressionError):
        matches(expression, TASK)


def test_not_a_string_is_refused():
    with pytest.raises(ExpressionError, match="must be a string"):
        parse(["a == 1"])


def test_parse_returns_a_tree_that_is_cached():
    tree = parse("a == 1 AND (b IN ['x'] OR c HAS 'y')")
    assert tree.op == "AND" and tree.terms[0].op == "==" and tree.terms[1].op == "OR"
    assert parse("a == 1 AND (b IN ['x'] OR c HAS 'y')") is tree
