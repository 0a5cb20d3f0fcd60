"""Entity batches: each operation against the state the previous ones left, and a failed
operation rolled back."""

import unittest

from support import dumps, failure_of  # noqa: F401 - support puts the SDK on the path

import durable_functions as df
from durable_functions import _model as m
from durable_functions._entity import run_batch


class NegativeAmount(Exception):
    pass


class UnknownOperation(Exception):
    pass


def counter(context: df.EntityContext):
    """A counter that also signals the counter `echo` with what it adds, and fails on
    negative amounts after changing its state and signalling."""
    operation = context.operation_name.lower()
    if operation == "add":
        amount = int(context.get_input())
        context.set_state(context.get_state(lambda: 0) + amount)
        context.signal_entity(df.EntityId("Counter", "echo"), "add", amount)
        if amount < 0:
            raise NegativeAmount("cannot add a negative amount")
    elif operation == "reset":
        context.set_state(0)
    elif operation == "get":
        context.set_result(context.get_state(lambda: 0))
    elif operation == "delete":
        context.delete_state()
    elif operation == "peek":
        context.set_result(context.has_state)
    else:
        raise UnknownOperation(f"no operation '{operation}'")


def op(name, input=None, encoded=False):
    if input is None:
        return m.Operation(name, None)
    return m.Operation(name, input if encoded else dumps(input))


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
    def test_a_failing_operation_in_the_middle_rolls_back_only_its_own_state_and_signals(self):
        batch = run(counter, 10, [op("add", 1), op("add", -100), op("Add", 2), op("get")])
        self.assertEqual(
            results(batch),
            [("ok", None), ("err", "NegativeAmount"), ("ok", None), ("ok", 13)],
        )
        self.assertEqual(batch.state, "13")
        self.assertEqual(batch.actions, [signal("echo", "add", 1), signal("echo", "add", 2)])

    def test_failures_carry_class_name_message_and_traceback(self):
        batch = run(counter, None, [op("add", -1), op("frobnicate")])
        first, second = batch.results
        self.assertEqual((first.error_type, first.message), ("NegativeAmount", "cannot add a negative amount"))
        self.assertIn("Traceback", first.details)
        self.assertEqual(second.error_type, "UnknownOperation")
        self.assertIsNone(batch.state, "the failed add created no state")
        self.assertEqual(batch.actions, [])

    def test_delete_state_ends_the_batch_without_state_unless_set_again(self):
        deleted = run(counter, 5, [op("delete"), op("get")])
        self.assertEqual(results(deleted), [("ok", None), ("ok", 0)])
        self.assertIsNone(deleted.state)
        recreated = run(counter, 5, [op("delete"), op("add", 3)])
        self.assertEqual(recreated.state, "3")

    def test_reading_leaves_a_missing_state_missing_and_setting_the_default_creates_it(self):
        read = run(counter, None, [op("peek"), op("get")])
        self.assertEqual(results(read), [("ok", False), ("ok", 0)])
        self.assertIsNone(read.state)
        reset = run(counter, None, [op("reset"), op("peek")])
        self.assertEqual(results(reset), [("ok", None), ("ok", True)])
        self.assertEqual(reset.state, "0")

    def test_every_operation_gets_its_own_result_and_sees_the_previous_state(self):
        batch = run(
            counter,
            None,
            [op("get"), op("add", 4), op("get"), op("add", dumps("6"), encoded=True), op("get")],
        )
        self.assertEqual(
            results(batch),
            [("ok", 0), ("ok", None), ("ok", 4), ("ok", None), ("ok", 10)],
        )
        self.assertEqual(batch.state, "10")

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

    def test_an_unknown_entity_fails_every_operation_and_keeps_the_state(self):
        batch = run(None, 1, [op("get"), op("add", 1)], name="missing")
        self.assertEqual(results(batch), [("err", "EntityNotFound"), ("err", "EntityNotFound")])
        self.assertEqual(batch.results[0].message, "this app has no entity named 'missing'")
        self.assertEqual(batch.state, "1")
        self.assertEqual(batch.actions, [])

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

    def test_double_encoded_operation_input_decodes_as_the_inner_json(self):
        def echo(context):
            context.set_result(context.get_input())

        batch = run(echo, None, [op("echo", dumps(dumps({"a": 1})), encoded=True)], name="echo")
        self.assertEqual(results(batch), [("ok", {"a": 1})])

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
