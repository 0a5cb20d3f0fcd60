"""Entity batches through the Python API: what the shared protocol corpus
(``tests/protocol/entity_batches.json``, run by ``test_protocol.py``) cannot show, namely how
exceptions and unencodable values become failures, in-place changes to a state object, and
the entity context's API."""

import unittest

from support import dumps, failure_of  # noqa: F401 - support puts the SDK on the path

import durable_functions as df
from durable_functions import _model as m
from durable_functions._entity import run_batch


def op(name, input=None):
    return m.Operation(name, None if input is None else dumps(input))


def run(entity, state, operations, name="counter", key="k"):
    return run_batch(entity, m.WitEntityId(name, key), None if state is None else dumps(state), operations)


def results(batch):
    import json

    shown = []
    for result in batch.results:
        if isinstance(result, m.FailureDetails):
            shown.append(("err", result.error_type))
        else:
            shown.append(("ok", None if result is None else json.loads(result)))
    return shown


def signal(key, operation, input, at=None):
    return m.SignalEntity(m.WitEntityId("counter", key), operation, dumps(input), at)


class Batches(unittest.TestCase):
    def test_a_failure_is_the_exception_class_name_its_text_and_the_traceback(self):
        class NegativeAmount(Exception):
            pass

        def fails(context):
            raise NegativeAmount("cannot add a negative amount")

        failure = run(fails, None, [op("add", -1)]).results[0]
        self.assertEqual((failure.error_type, failure.message), ("NegativeAmount", "cannot add a negative amount"))
        self.assertIn("Traceback (most recent call last)", failure.details)
        self.assertIn("in fails", failure.details)

    def test_an_in_place_change_to_a_failed_operations_state_is_rolled_back(self):
        def appender(context):
            items = context.get_state(list)
            items.append(context.get_input())
            context.set_state(items)
            if context.get_input() == "bad":
                raise ValueError("bad item")

        batch = run(appender, ["a"], [op("add", "b"), op("add", "bad"), op("add", "c")], name="list")
        self.assertEqual(results(batch)[1], ("err", "ValueError"))
        self.assertEqual(batch.state, dumps(["a", "b", "c"]))

    def test_a_value_that_cannot_be_encoded_fails_the_operation(self):
        def bad(context):
            context.set_state({"a": 1})
            if context.operation_name == "bad_result":
                context.set_result({(1, 2): "tuple keys are not JSON"})
            if context.operation_name == "bad_state":
                context.set_state({1, 2})

        batch = run(bad, None, [op("bad_result"), op("bad_state"), op("ok")], name="bad")
        self.assertEqual(
            results(batch),
            [("err", "SerializationError"), ("err", "SerializationError"), ("ok", None)],
        )
        self.assertEqual(batch.state, '{"a":1}')

    def test_the_context_exposes_id_and_operation_and_sends_timed_signals_and_starts(self):
        from datetime import datetime, timezone

        def probe(context):
            seen = context.get_state(lambda: {"ids": []})
            seen["ids"].append(f"{context.entity_id}:{context.operation_name}:{context.entity_name}:{context.entity_key}")
            context.set_state(seen)
            at = datetime(1970, 1, 1, 0, 0, 2, tzinfo=timezone.utc)
            context.signal_entity(df.EntityId("COUNTER", "later"), "add", 1, scheduled_time=at)
            context.start_new_orchestration("Flow", context.entity_key)
            context.start_new_orchestration("Flow", instance_id="flow-1")

        batch = run(probe, None, [op("Look")], name="Probe")
        self.assertEqual(batch.state, '{"ids":["@probe@k:Look:probe:k"]}')
        self.assertEqual(
            batch.actions,
            [
                signal("later", "add", 1, 2_000_000),
                m.StartOrchestration("Flow", None, '"k"'),
                m.StartOrchestration("Flow", "flow-1", "null"),
            ],
        )

    def test_destruct_on_exit_is_delete_state(self):
        def destroy(context):
            context.destruct_on_exit()

        self.assertIsNone(run(destroy, 3, [op("x")], name="d").state)


class EntityIds(unittest.TestCase):
    def test_entity_ids_lowercase_their_name_and_order_by_name_then_key(self):
        self.assertEqual(df.EntityId("Counter", "k"), df.EntityId("COUNTER", "k"))
        self.assertNotEqual(df.EntityId("counter", "k"), df.EntityId("counter", "K"))
        ids = sorted([df.EntityId("b", "1"), df.EntityId("A", "2"), df.EntityId("a", "1")])
        self.assertEqual([str(i) for i in ids], ["@a@1", "@a@2", "@b@1"])
        self.assertEqual(len({df.EntityId("X", "1"), df.EntityId("x", "1")}), 1)


if __name__ == "__main__":
    unittest.main()
