"""The executor fed with histories built in code, as the host would feed it: what the shared
protocol corpus (``tests/protocol``, run by ``test_protocol.py``) cannot show, namely the
Python API (generators, ``TaskFailedError``, ``with`` on a lock, cancellation), how Python
exceptions and values become failures, and the executor's cost on a large fan-in."""

import random
import time
import unittest
from datetime import timedelta

from support import (
    SECOND,
    T0,
    Host,
    call_entity,
    complete,
    entity_completed,
    entity_failed,
    event_raised,
    execution_started,
    failure_of,
    lock,
    lock_granted,
    orchestrator_started,
    output_of,
    schedule,
    signal_entity,
    sub_failed,
    task_completed,
    task_failed,
    timer,
    timer_fired,
    unlock,
)

import durable_functions as df
from durable_functions import _model as m


def fan_out(context):
    n = int(context.get_input())
    squares = yield context.task_all([context.call_activity("Square", i) for i in range(1, n + 1)])
    return sum(squares)


class Orchestrators(unittest.TestCase):
    def test_a_plain_function_is_an_orchestrator_that_waits_for_nothing(self):
        def plain(context):
            context.signal_entity(df.EntityId("Counter", "k"), "add", 1)
            return context.get_input()

        _, first = Host.start("Plain", plain, 7)
        self.assertEqual(first.actions, [signal_entity(0, "counter", "k", "add", 1), complete(7)])

    def test_current_utc_datetime_is_the_time_of_the_episode_and_aware(self):
        def times(context):
            start = context.current_utc_datetime
            yield context.call_activity("A")
            return [start.isoformat(), context.current_utc_datetime.isoformat()]

        host, _ = Host.start("Times", times)
        result = host.episode(T0 + 5 * SECOND + 7, [task_completed(0, None)])
        self.assertEqual(
            output_of(result),
            ["2023-11-14T22:13:20+00:00", "2023-11-14T22:13:25.000007+00:00"],
        )

    def test_the_instance_id_name_and_parent_come_from_execution_started(self):
        def facts(context):
            return [context.instance_id, context.function_name, context.parent_instance_id]
            yield

        host = Host("Facts", facts)
        parent = m.ParentInstance("parent-1", "Parent", 3)
        result = host.executor.apply(
            [orchestrator_started(T0), execution_started("Facts", None, "child-1", parent)], False
        )
        self.assertEqual(output_of(result), ["child-1", "Facts", "parent-1"])

    def test_yielding_something_other_than_a_task_raises_a_type_error_inside_the_orchestrator(self):
        def bad(context):
            try:
                yield 42
            except TypeError as error:
                return str(error)

        _, first = Host.start("Bad", bad)
        self.assertIn("must yield durable tasks", output_of(first))

    def test_yielding_a_completed_task_again_returns_its_result_again(self):
        def twice(context):
            task = context.call_activity("A")
            first = yield task
            second = yield task
            return [first, second, task.is_completed, task.result]

        host, _ = Host.start("Twice", twice)
        self.assertEqual(output_of(host.episode(T0, [task_completed(0, 3)])), [3, 3, True, 3])


class FanOut(unittest.TestCase):
    def test_a_fan_in_over_many_tasks_completed_one_event_at_a_time_sums_every_value(self):
        host, first = Host.start("FanOut", fan_out, 2000)
        self.assertEqual(len(first.actions), 2000)
        started = time.perf_counter()
        last = host.episode(T0 + SECOND, [task_completed(i, i) for i in reversed(range(2000))])
        elapsed = time.perf_counter() - started
        self.assertEqual(last.actions, [complete(sum(range(2000)))])
        # Each completion polls only the child it woke, not all 2000.
        self.assertLess(elapsed, 1.0)
        host.assert_replay_matches(self)


class Events(unittest.TestCase):
    def test_a_loser_of_task_any_keeps_its_claim_until_cancelled(self):
        def race_then_yield_loser(context):
            timeout = context.create_timer(context.current_utc_datetime)
            event = context.wait_for_external_event("E")
            winner = yield context.task_any([timeout, event])
            assert winner is timeout
            return (yield event)

        host, _ = Host.start("Race", race_then_yield_loser)
        host.episode(T0, [timer_fired(0, T0)])
        self.assertEqual(host.episode(T0 + SECOND, [event_raised("E", 8)]).actions, [complete(8)])


class Failures(unittest.TestCase):
    def test_an_activity_failure_is_caught_as_a_task_failed_error_with_message_and_details(self):
        def catches(context):
            try:
                return (yield context.call_activity("Fail"))
            except df.TaskFailedError as error:
                return {
                    "kind": error.task_kind,
                    "task": error.task_name,
                    "type": error.error_type,
                    "message": error.message,
                    "details": error.details,
                    "text": str(error),
                }

        host, first = Host.start("Catches", catches)
        self.assertEqual(first.actions, [schedule(0, "Fail", None)])
        result = host.episode(T0 + SECOND, [task_failed(0, "Fail always fails")])
        self.assertEqual(
            result.actions,
            [
                complete(
                    {
                        "kind": "activity",
                        "task": "Fail",
                        "type": "FailAlwaysError",
                        "message": "Fail always fails",
                        "details": "trace",
                        "text": "activity 'Fail' failed: Fail always fails",
                    }
                )
            ],
        )

    def test_an_exception_fails_the_orchestration_with_its_class_name_text_and_traceback(self):
        class OutOfStock(Exception):
            pass

        def raises(context):
            yield context.call_activity("A")
            raise OutOfStock("no tickets left")

        host, _ = Host.start("Raises", raises)
        failure = failure_of(host.episode(T0, [task_completed(0, None)]))
        self.assertEqual((failure.error_type, failure.message), ("OutOfStock", "no tickets left"))
        self.assertIn("Traceback (most recent call last)", failure.details)
        self.assertIn("in raises", failure.details)

    def test_an_exception_before_the_first_yield_fails_the_first_episode(self):
        def broken(context):
            raise KeyError("missing")
            yield

        _, first = Host.start("Broken", broken)
        self.assertEqual(failure_of(first).error_type, "KeyError")

    def test_a_sub_orchestration_failure_surfaces_as_a_task_failed_error(self):
        def parent(context):
            try:
                return (yield context.call_sub_orchestrator("Child", 5))
            except df.TaskFailedError as error:
                assert error.task_kind == "sub-orchestration"
                return str(error)

        host, first = Host.start("Parent", parent)
        self.assertEqual(first.actions, [m.Action(0, m.CallSubOrchestration("Child", None, "5"))])
        result = host.episode(T0, [sub_failed(0, "ChildError", "child broke")])
        self.assertEqual(result.actions, [complete("sub-orchestration 'Child' failed: child broke")])

    def test_an_output_that_cannot_be_encoded_fails_with_a_serialization_error(self):
        def bad_output(context):
            return {1, 2}
            yield

        _, first = Host.start("BadOutput", bad_output)
        failure = failure_of(first)
        self.assertEqual(failure.error_type, "SerializationError")
        self.assertIn("the orchestrator output could not be encoded as JSON", failure.message)

    def test_a_custom_status_that_cannot_be_encoded_fails_the_orchestration(self):
        def bad_status(context):
            context.set_custom_status(float("nan"))
            yield context.wait_for_external_event("Never")

        _, first = Host.start("BadStatus", bad_status)
        self.assertEqual(failure_of(first).error_type, "SerializationError")

    def test_an_async_orchestrator_is_refused_with_a_clear_error(self):
        async def coroutine(context):
            return 1

        _, first = Host.start("Async", coroutine)
        self.assertIn("generator", failure_of(first).message)


class Determinism(unittest.TestCase):
    def test_random_inside_an_orchestrator_is_reproducible_once_reseeded(self):
        # The component reseeds `random` from the host's per-orchestration source before
        # every episode; with the same seed, the same draws come back.
        def draws(context):
            return [random.random() for _ in range(3)]
            yield

        results = []
        for _ in range(2):
            random.seed(b"same seed")
            _, first = Host.start("Draws", draws)
            results.append(output_of(first))
        self.assertEqual(results[0], results[1])


class Entities(unittest.TestCase):
    def test_a_failed_entity_operation_is_a_task_failed_error_naming_operation_and_entity(self):
        def catches(context):
            account = df.EntityId("Account", "a")
            try:
                yield context.call_entity(account, "withdraw", 100)
            except df.TaskFailedError as error:
                return {
                    "task": error.task_name,
                    "entity": str(error.entity),
                    "type": error.error_type,
                    "details": error.details,
                    "text": str(error),
                }

        host, first = Host.start("Catches", catches)
        self.assertEqual(first.actions, [call_entity(0, "account", "a", "withdraw", 100)])
        result = host.episode(T0, [entity_failed(0, "InsufficientFunds", "balance 0 < 100")])
        self.assertEqual(
            output_of(result),
            {
                "task": "withdraw",
                "entity": "@account@a",
                "type": "InsufficientFunds",
                "details": "entity trace",
                "text": "operation 'withdraw' of entity '@account@a' failed: balance 0 < 100",
            },
        )
        host.assert_replay_matches(self)

    def test_a_held_lock_is_a_context_manager_released_when_the_with_block_ends(self):
        def locked(context):
            source, target = df.EntityId("Account", "b"), df.EntityId("Account", "a")
            held = yield context.lock_entities([source, target, source])
            assert held.entities == [target, source]
            with held:
                yield context.call_entity(source, "balance")
            yield context.call_activity("After")
            return True

        host, first = Host.start("Locked", locked)
        self.assertEqual(first.actions, [lock(0, "account", "a", "b")])
        host.episode(T0, [lock_granted(0)])
        released = host.episode(T0 + SECOND, [entity_completed(1, 50)])
        self.assertEqual(released.actions, [unlock(2, "account", "a", "b"), schedule(3, "After", None)])
        last = host.episode(T0 + 2 * SECOND, [task_completed(3, None)])
        self.assertEqual(last.actions, [complete(True)], "released once, not again at the end")
        host.assert_replay_matches(self)

    def test_locking_nothing_or_locking_inside_a_critical_section_violates_the_locking_rules(self):
        def nested(context):
            errors = []
            try:
                yield context.lock_entities([])
            except df.TaskFailedError as error:
                errors.append(error.error_type)
            outer = yield context.lock_entities(df.EntityId("Account", "a"))
            try:
                yield context.lock_entities(df.EntityId("Account", "b"))
            except df.TaskFailedError as error:
                errors.append(str(error))
            outer.release()
            outer.release()
            again = yield context.lock_entities(df.EntityId("Account", "b"))
            again.release()
            return errors

        host, first = Host.start("Nested", nested)
        self.assertEqual(first.actions, [lock(0, "account", "a")])
        second = host.episode(T0, [lock_granted(0)])
        self.assertEqual(second.actions, [unlock(1, "account", "a"), lock(2, "account", "b")])
        last = host.episode(T0, [lock_granted(2)])
        self.assertEqual(last.actions[0], unlock(3, "account", "b"))
        errors = output_of(last)
        self.assertEqual(errors[0], "LockingRulesViolation")
        self.assertIn("do not nest", errors[1])
        host.assert_replay_matches(self)


class Cancellation(unittest.TestCase):
    def test_a_cancelled_timer_ignores_its_firing_and_fails_if_yielded(self):
        def cancels(context):
            pending = context.create_timer(context.current_utc_datetime + timedelta(seconds=5))
            pending.cancel()
            try:
                yield pending
            except df.TaskCancelledError:
                return pending.is_cancelled

        _, first = Host.start("Cancels", cancels)
        self.assertEqual(first.actions, [timer(0, T0 + 5 * SECOND), complete(True)])


if __name__ == "__main__":
    unittest.main()
