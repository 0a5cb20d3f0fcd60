"""The executor fed with histories built in code, as the host would feed it."""

import json
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
    dumps,
    entity_completed,
    entity_failed,
    event,
    event_raised,
    execution_started,
    failure_of,
    lock,
    lock_granted,
    orchestrator_started,
    output_of,
    schedule,
    signal_entity,
    sub_completed,
    sub_failed,
    task_completed,
    task_failed,
    timer,
    timer_fired,
    unlock,
)

import durable_functions as df
from durable_functions import _model as m

# ---- orchestrators ----


def hello_sequence(context):
    out = []
    for city in ["Tokyo", "Seattle", "London"]:
        out.append((yield context.call_activity("SayHello", city)))
    return out


def fan_out(context):
    n = int(context.get_input())
    squares = yield context.task_all([context.call_activity("Square", i) for i in range(1, n + 1)])
    return sum(squares)


def approval(context):
    """Waits for "Approval" for 60 seconds."""
    deadline = context.current_utc_datetime + timedelta(seconds=60)
    timeout = context.create_timer(deadline)
    approved = context.wait_for_external_event("Approval")
    winner = yield context.task_any([timeout, approved])
    if winner is approved:
        return f"approved={json.dumps(approved.result)}"
    return "timeout"


def activity_then_event(context):
    """Waits for "E" twice once an activity has completed."""
    yield context.call_activity("Prepare")
    first = yield context.wait_for_external_event("E")
    second = yield context.wait_for_external_event("e")
    return [first, second]


def fail_unhandled(context):
    return (yield context.call_activity("Fail"))


def with_retry(context):
    retry = df.RetryOptions(first_retry_interval_in_milliseconds=5000, max_number_of_attempts=3)
    retry.backoff_coefficient = 2.0
    return (yield context.call_activity_with_retry("Flaky", retry, "x"))


class Sequences(unittest.TestCase):
    def test_a_sequence_schedules_one_activity_at_a_time_and_completes_with_all_results(self):
        host, first = Host.start("Hello", hello_sequence)
        self.assertEqual(first.actions, [schedule(0, "SayHello", "Tokyo")])
        second = host.episode(T0 + SECOND, [task_completed(0, "Hello Tokyo!")])
        self.assertEqual(second.actions, [schedule(1, "SayHello", "Seattle")])
        third = host.episode(T0 + 2 * SECOND, [task_completed(1, "Hello Seattle!")])
        self.assertEqual(third.actions, [schedule(2, "SayHello", "London")])
        last = host.episode(T0 + 3 * SECOND, [task_completed(2, "Hello London!")])
        self.assertEqual(last.actions, [complete(["Hello Tokyo!", "Hello Seattle!", "Hello London!"])])
        self.assertIsNone(last.custom_status)
        host.assert_replay_matches(self)

    def test_completions_that_are_not_pending_or_of_another_kind_are_ignored(self):
        host, _ = Host.start("Hello", hello_sequence)
        result = host.episode(
            T0 + SECOND,
            [
                task_completed(7, "stray"),
                timer_fired(0, T0),
                task_completed(0, "Hello Tokyo!"),
                task_completed(0, "duplicate"),
            ],
        )
        self.assertEqual(result.actions, [schedule(1, "SayHello", "Seattle")])
        host.episode(T0 + 2 * SECOND, [task_completed(1, "Hello Seattle!")])
        last = host.episode(T0 + 3 * SECOND, [task_completed(2, "Hello London!")])
        self.assertEqual(last.actions, [complete(["Hello Tokyo!", "Hello Seattle!", "Hello London!"])])

    def test_a_plain_function_is_an_orchestrator_that_waits_for_nothing(self):
        def plain(context):
            context.signal_entity(df.EntityId("Counter", "k"), "add", 1)
            return context.get_input()

        _, first = Host.start("Plain", plain, 7)
        self.assertEqual(first.actions, [signal_entity(0, "counter", "k", "add", 1), complete(7)])

    def test_is_replaying_follows_the_flag_of_each_apply(self):
        def observe(context):
            seen = [context.is_replaying]
            yield context.call_activity("A")
            seen.append(context.is_replaying)
            return seen

        host = Host("Observe", observe)
        first = host.executor.apply([orchestrator_started(T0), execution_started("Observe")], True)
        self.assertEqual(first.actions, [schedule(0, "A", None)])
        last = host.executor.apply([orchestrator_started(T0 + SECOND), task_completed(0, None)], False)
        self.assertEqual(last.actions, [complete([True, False])])

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
    def test_fan_out_schedules_every_activity_at_once_and_sums_completions_in_any_order(self):
        host, first = Host.start("FanOut", fan_out, 3)
        self.assertEqual(
            first.actions,
            [schedule(0, "Square", 1), schedule(1, "Square", 2), schedule(2, "Square", 3)],
        )
        self.assertEqual(host.episode(T0 + SECOND, [task_completed(2, 9)]).actions, [])
        last = host.episode(T0 + 2 * SECOND, [task_completed(1, 4), task_completed(0, 1)])
        self.assertEqual(last.actions, [complete(14)])
        host.assert_replay_matches(self)

    def test_task_all_fails_fast_on_the_first_failure_in_completion_order(self):
        host, _ = Host.start("FanOut", fan_out, 3)
        result = host.episode(T0 + SECOND, [task_failed(1, "square failed")])
        self.assertIn("square failed", failure_of(result).message)

    def test_task_all_of_no_tasks_completes_at_once(self):
        host, first = Host.start("FanOut", fan_out, 0)
        self.assertEqual(first.actions, [complete(0)])

    def test_a_fan_in_nested_in_a_race_wins_when_its_last_task_completes_later(self):
        def all_or_timeout(context):
            both = context.task_all([context.call_activity("Square", 2), context.call_activity("Square", 3)])
            timeout = context.create_timer(context.current_utc_datetime + timedelta(days=10))
            winner = yield context.task_any([both, timeout])
            return winner.result if winner is both else "timeout"

        host, first = Host.start("AllOrTimeout", all_or_timeout)
        self.assertEqual(len(first.actions), 3)
        self.assertEqual(host.episode(T0 + SECOND, [task_completed(1, 9)]).actions, [])
        last = host.episode(T0 + 2 * SECOND, [task_completed(0, 4)])
        self.assertEqual(last.actions, [complete([4, 9])])
        host.assert_replay_matches(self)

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

    def test_double_encoded_input_decodes_as_the_inner_json(self):
        def read(context):
            return context.get_input()["a"]

        host = Host("Read", read)
        result = host.episode(T0, [execution_started("Read", dumps(dumps({"a": 1})))])
        self.assertEqual(result.actions, [complete(1)])


class Events(unittest.TestCase):
    def test_the_event_wins_the_race_against_the_timer(self):
        host, first = Host.start("Approval", approval)
        self.assertEqual(first.actions, [timer(0, T0 + 60 * SECOND)])
        result = host.episode(T0 + SECOND, [event_raised("Approval", True)])
        self.assertEqual(result.actions, [complete("approved=true")])
        host.assert_replay_matches(self)

    def test_the_timer_wins_the_race_against_the_event(self):
        host, _ = Host.start("Approval", approval)
        result = host.episode(
            T0 + 60 * SECOND,
            [timer_fired(0, T0 + 60 * SECOND), event_raised("Approval", True)],
        )
        self.assertEqual(result.actions, [complete("timeout")])
        host.assert_replay_matches(self)

    def test_a_cancelled_waiter_leaves_later_events_to_the_next_wait(self):
        def race_then_wait(context):
            timeout = context.create_timer(context.current_utc_datetime)
            first = context.wait_for_external_event("E")
            winner = yield context.task_any([timeout, first])
            assert winner is timeout
            first.cancel()
            return (yield context.wait_for_external_event("E"))

        host, _ = Host.start("Race", race_then_wait)
        self.assertEqual(host.episode(T0, [timer_fired(0, T0)]).actions, [])
        result = host.episode(T0 + SECOND, [event_raised("E", 7)])
        self.assertEqual(result.actions, [complete(7)])
        host.assert_replay_matches(self)

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

    def test_of_tasks_that_complete_together_the_first_in_the_list_wins(self):
        def race(context):
            yield context.call_activity("Prepare")
            a = context.wait_for_external_event("A")
            b = context.wait_for_external_event("B")
            winner = yield context.task_any([b, a])
            return winner.result

        host, _ = Host.start("Race", race)
        host.episode(T0, [event_raised("A", "a"), event_raised("B", "b")])
        self.assertEqual(host.episode(T0, [task_completed(0, None)]).actions, [complete("b")])
        host.assert_replay_matches(self)

    def test_an_event_raised_before_the_wait_is_buffered_and_delivered_when_the_wait_starts(self):
        host, _ = Host.start("Buffered", activity_then_event)
        self.assertEqual(host.episode(T0 + SECOND, [event_raised("E", 1)]).actions, [])
        waiting = host.episode(T0 + 2 * SECOND, [task_completed(0, None)])
        self.assertEqual(waiting.actions, [], "the second wait has no event yet")
        last = host.episode(T0 + 3 * SECOND, [event_raised("E", 2)])
        self.assertEqual(last.actions, [complete([1, 2])])
        host.assert_replay_matches(self)

    def test_two_buffered_events_with_one_name_are_delivered_in_arrival_order(self):
        host, _ = Host.start("Buffered", activity_then_event)
        host.episode(T0 + SECOND, [event_raised("E", 1), event_raised("E", 2)])
        last = host.episode(T0 + 2 * SECOND, [task_completed(0, None)])
        self.assertEqual(last.actions, [complete([1, 2])])
        host.assert_replay_matches(self)

    def test_of_two_waiters_for_one_name_the_oldest_gets_the_first_event(self):
        def two_waiters(context):
            first = context.wait_for_external_event("E")
            second = context.wait_for_external_event("E")
            return (yield context.task_all([second, first]))

        host, _ = Host.start("TwoWaiters", two_waiters)
        result = host.episode(T0 + SECOND, [event_raised("E", 1), event_raised("E", 2)])
        self.assertEqual(result.actions, [complete([2, 1])])
        host.assert_replay_matches(self)

    def test_event_names_match_case_insensitively_whether_waiting_or_buffered(self):
        host, _ = Host.start("Approval", approval)
        result = host.episode(T0 + SECOND, [event_raised("APPROVAL", False)])
        self.assertEqual(result.actions, [complete("approved=false")])

        host, _ = Host.start("Buffered", activity_then_event)
        host.episode(T0 + SECOND, [event_raised("e", 1), event_raised("E", 2)])
        last = host.episode(T0 + 2 * SECOND, [task_completed(0, None)])
        self.assertEqual(last.actions, [complete([1, 2])])

    def test_double_encoded_event_payloads_decode_as_the_inner_json(self):
        def wait(context):
            return (yield context.wait_for_external_event("E"))

        host, _ = Host.start("Wait", wait)
        result = host.episode(T0, [event(m.EventRaised("E", dumps(dumps({"city": "Tokyo"}))))])
        self.assertEqual(result.actions, [complete({"city": "Tokyo"})])

    def test_continue_as_new_carries_every_unconsumed_event_in_arrival_order(self):
        def counter(context):
            total = context.get_input()
            add = yield context.wait_for_external_event("Add")
            context.continue_as_new(total + add)

        host, first = Host.start("Counter", counter, 10)
        self.assertEqual(first.actions, [])
        result = host.episode(
            T0 + SECOND,
            [event_raised("Other", "x"), event_raised("Add", 2), event_raised("Add", 3)],
        )
        expected = m.ContinueAsNew(
            "12", [m.CarriedEvent("Other", dumps("x")), m.CarriedEvent("Add", "3")]
        )
        self.assertEqual(result.actions, [m.Action(-1, expected)])
        host.assert_replay_matches(self)

    def test_an_event_handed_to_a_waiter_that_never_returned_it_is_carried(self):
        def abandons(context):
            context.wait_for_external_event("Late")
            yield context.call_activity("A")
            context.continue_as_new("again")

        host, _ = Host.start("Abandons", abandons)
        result = host.episode(T0, [event_raised("Late", 1), task_completed(0, None), event_raised("After", 2)])
        self.assertEqual(
            result.actions,
            [m.Action(-1, m.ContinueAsNew(dumps("again"), [m.CarriedEvent("Late", "1"), m.CarriedEvent("After", "2")]))],
        )


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

    def test_an_unhandled_activity_failure_fails_the_orchestration_keeping_the_error_type(self):
        host, _ = Host.start("FailAlways", fail_unhandled)
        result = host.episode(T0 + SECOND, [task_failed(0, "Fail always fails")])
        failure = failure_of(result)
        self.assertEqual(failure.error_type, "FailAlwaysError")
        self.assertEqual(failure.message, "activity 'Fail' failed: Fail always fails")
        self.assertIn("Traceback", failure.details)
        self.assertTrue(failure.details.endswith("trace"), failure.details)
        self.assertEqual(host.episode(T0 + 2 * SECOND, []).actions, [])
        host.assert_replay_matches(self)

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

    def test_an_unknown_orchestrator_fails_on_the_first_apply_and_then_issues_nothing(self):
        app = df.DFApp()
        executor = app._registry().executor("Missing", "instance-1")
        first = executor.apply([orchestrator_started(T0), execution_started("Missing")], False)
        failure = failure_of(first)
        self.assertEqual(failure.error_type, "OrchestratorNotFound")
        self.assertIn("Missing", failure.message)
        self.assertEqual(executor.apply([orchestrator_started(T0)], False).actions, [])

    def test_an_async_orchestrator_is_refused_with_a_clear_error(self):
        async def coroutine(context):
            return 1

        _, first = Host.start("Async", coroutine)
        self.assertIn("generator", failure_of(first).message)


class Retries(unittest.TestCase):
    def test_retry_waits_on_a_durable_timer_then_schedules_again_until_attempts_run_out(self):
        host, first = Host.start("Retry", with_retry)
        self.assertEqual(first.actions, [schedule(0, "Flaky", "x")])
        failed = host.episode(T0 + SECOND, [task_failed(0, "boom 1")])
        self.assertEqual(failed.actions, [timer(1, T0 + 6 * SECOND)])
        again = host.episode(T0 + 6 * SECOND, [timer_fired(1, T0 + 6 * SECOND)])
        self.assertEqual(again.actions, [schedule(2, "Flaky", "x")])
        failed = host.episode(T0 + 7 * SECOND, [task_failed(2, "boom 2")])
        self.assertEqual(failed.actions, [timer(3, T0 + 17 * SECOND)], "backoff doubles")
        again = host.episode(T0 + 17 * SECOND, [timer_fired(3, T0 + 17 * SECOND)])
        self.assertEqual(again.actions, [schedule(4, "Flaky", "x")])
        last = host.episode(T0 + 18 * SECOND, [task_failed(4, "boom 3")])
        self.assertIn("boom 3", failure_of(last).message)
        host.assert_replay_matches(self)

    def test_retry_returns_the_result_of_the_first_attempt_that_succeeds(self):
        host, _ = Host.start("Retry", with_retry)
        host.episode(T0 + SECOND, [task_failed(0, "boom")])
        host.episode(T0 + 6 * SECOND, [timer_fired(1, T0 + 6 * SECOND)])
        last = host.episode(T0 + 7 * SECOND, [task_completed(2, "ok")])
        self.assertEqual(last.actions, [complete("ok")])
        host.assert_replay_matches(self)

    def test_retry_stops_when_the_next_attempt_would_start_after_the_retry_timeout(self):
        def with_timeout(context):
            retry = df.RetryOptions(5000, 10, retry_timeout_in_milliseconds=8000)
            return (yield context.call_activity_with_retry("Flaky", retry))

        host, _ = Host.start("Retry", with_timeout)
        failed = host.episode(T0 + SECOND, [task_failed(0, "boom 1")])
        self.assertEqual(failed.actions, [timer(1, T0 + 6 * SECOND)])
        host.episode(T0 + 6 * SECOND, [timer_fired(1, T0 + 6 * SECOND)])
        failure_of(host.episode(T0 + 7 * SECOND, [task_failed(2, "boom 2")]))

    def test_a_retrying_call_not_waited_on_makes_its_next_attempt_when_it_is(self):
        def lazy(context):
            retried = context.call_activity_with_retry("Flaky", df.RetryOptions(1000, 2))
            other = context.call_activity("Other")
            yield other
            return (yield retried)

        host, _ = Host.start("Lazy", lazy)
        self.assertEqual(host.episode(T0 + SECOND, [task_failed(0, "boom")]).actions, [])
        resumed = host.episode(T0 + 5 * SECOND, [task_completed(1, None)])
        self.assertEqual(resumed.actions, [timer(2, T0 + 6 * SECOND)])
        host.episode(T0 + 6 * SECOND, [timer_fired(2, T0 + 6 * SECOND)])
        last = host.episode(T0 + 7 * SECOND, [task_completed(3, "done")])
        self.assertEqual(last.actions, [complete("done")])
        host.assert_replay_matches(self)

    def test_sub_orchestrator_with_retry_calls_again_with_the_same_instance_id(self):
        def parent(context):
            return (yield context.call_sub_orchestrator_with_retry("Child", df.RetryOptions(1000, 2), 1, "c-1"))

        host, first = Host.start("Parent", parent)
        call = m.Action(0, m.CallSubOrchestration("Child", "c-1", "1"))
        self.assertEqual(first.actions, [call])
        host.episode(T0, [sub_failed(0, "E", "no")])
        again = host.episode(T0 + SECOND, [timer_fired(1, T0 + SECOND)])
        self.assertEqual(again.actions, [m.Action(2, m.CallSubOrchestration("Child", "c-1", "1"))])
        self.assertEqual(host.episode(T0 + SECOND, [sub_completed(2, 9)]).actions, [complete(9)])


class Determinism(unittest.TestCase):
    def test_replaying_a_mixed_history_in_a_fresh_executor_issues_identical_actions(self):
        def mixed(context):
            uuid = context.new_uuid()
            context.set_custom_status({"step": 1})
            greeting = yield context.call_activity("SayHello", "Tokyo")
            context.send_event("other", "Ping", uuid)
            squares = yield context.task_all(
                [context.call_activity("Square", 2), context.call_activity("Square", 3)]
            )
            total = sum(squares)
            yield context.create_timer(context.current_utc_datetime + timedelta(seconds=30))
            child = yield context.call_sub_orchestrator("Child", total, instance_id="child-1")
            approved = yield context.wait_for_external_event("Approval")
            context.set_custom_status({"step": 2})
            return [uuid, greeting, total, child, approved, context.new_uuid()]

        host, first = Host.start("Mixed", mixed)
        self.assertEqual(first.custom_status, '{"step":1}')
        episode = host.episode(T0 + SECOND, [task_completed(0, "Hello Tokyo!")])
        self.assertEqual(len(episode.actions), 3, "send-event and two activities")
        self.assertIsInstance(episode.actions[0].kind, m.SendEvent)
        host.episode(
            T0 + 2 * SECOND,
            [task_completed(3, 9), event_raised("Approval", True), task_completed(2, 4)],
        )
        host.episode(T0 + 32 * SECOND, [timer_fired(4, T0 + 32 * SECOND)])
        self.assertEqual(host.actions[-1].kind, m.CallSubOrchestration("Child", "child-1", "13"))
        last = host.episode(T0 + 40 * SECOND, [sub_completed(5, 169)])
        self.assertEqual(last.custom_status, '{"step":2}')
        output = output_of(last)
        self.assertEqual(output[1:5], ["Hello Tokyo!", 13, 169, True])
        self.assertNotEqual(output[0], output[5])
        host.assert_replay_matches(self)

    def test_new_uuid_matches_the_rust_sdk_and_differs_per_call_and_per_time(self):
        def uuids(context):
            first = [context.new_uuid(), context.new_uuid()]
            yield context.create_timer(context.current_utc_datetime)
            return first + [context.new_uuid()]

        def run():
            host, _ = Host.start("Uuids", uuids)
            return output_of(host.episode(T0 + SECOND, [timer_fired(0, T0)]))

        first = run()
        self.assertEqual(first, run())
        self.assertEqual(len(set(first)), 3)
        self.assertTrue(all(len(u) == 36 and u[14] == "5" for u in first))

        def at_epoch(context):
            return context.new_uuid()
            yield

        host = Host("Abc", at_epoch)
        result = host.executor.apply([orchestrator_started(0), execution_started("Abc", None, "abc")], False)
        # The value the Rust SDK's guid tests pin.
        self.assertEqual(output_of(result), "5f5f59fe-84fc-5304-b842-6e260c6ad666")

    def test_custom_status_is_none_until_set_and_then_reported_in_every_episode(self):
        def status(context):
            yield context.call_activity("A")
            context.set_custom_status("working")
            yield context.call_activity("B")

        host, first = Host.start("Status", status)
        self.assertIsNone(first.custom_status)
        self.assertEqual(host.episode(T0, [task_completed(0, None)]).custom_status, '"working"')
        third = host.episode(T0, [event_raised("Unrelated", 1)])
        self.assertEqual(third.actions, [])
        self.assertEqual(third.custom_status, '"working"')

    def test_send_event_takes_a_sequence_number_shared_with_other_actions(self):
        def sender(context):
            context.send_event("other", "Ping", 1)
            yield context.call_activity("A")

        _, first = Host.start("Sender", sender)
        self.assertEqual(first.actions, [m.Action(0, m.SendEvent("other", "Ping", "1")), schedule(1, "A", None)])

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
    def add_then_get(self, context):
        counter = df.EntityId("Counter", "k")
        yield context.call_entity(counter, "add", 5)
        return (yield context.call_entity(counter, "get"))

    def transfer(self, context):
        """Moves 10 from account b to account a in a critical section if b has enough."""
        source, target = df.EntityId("Account", "b"), df.EntityId("Account", "a")
        held = yield context.lock_entities([source, target, source])
        assert held.entities == [target, source]
        with held:
            balance = yield context.call_entity(source, "balance")
            if balance < 10:
                return False
            yield context.call_entity(source, "withdraw", 10)
            yield context.call_entity(target, "deposit", 10)
        return True

    def transfer_without_with(self, context):
        source, target = df.EntityId("Account", "b"), df.EntityId("Account", "a")
        yield context.lock_entities(source, target)
        balance = yield context.call_entity(source, "balance")
        if balance < 10:
            return False
        yield context.call_entity(source, "withdraw", 10)
        return True

    def test_call_entity_issues_call_entity_and_completes_with_the_operation_result(self):
        host, first = Host.start("Caller", self.add_then_get)
        self.assertEqual(first.actions, [call_entity(0, "counter", "k", "add", 5)])
        second = host.episode(T0 + SECOND, [entity_completed(0)])
        self.assertEqual(second.actions, [call_entity(1, "counter", "k", "get", None)])
        last = host.episode(T0 + 2 * SECOND, [entity_completed(1, 5)])
        self.assertEqual(last.actions, [complete(5)])
        host.assert_replay_matches(self)

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

        host, _ = Host.start("Caller", self.add_then_get)
        failure = failure_of(host.episode(T0, [entity_failed(0, "Boom", "add broke")]))
        self.assertEqual(failure.error_type, "Boom")
        self.assertEqual(failure.message, "operation 'add' of entity '@counter@k' failed: add broke")

    def test_signal_entity_issues_an_action_with_a_sequence_number_and_waits_for_nothing(self):
        def signaller(context):
            counter = df.EntityId("Counter", "k")
            for _ in range(2):
                context.signal_entity(counter, "add", 1)
            later = context.current_utc_datetime + timedelta(seconds=10)
            context.signal_entity(df.EntityId("counter", "other"), "reset", scheduled_time=later)
            yield context.call_activity("A")
            context.signal_entity(counter, "add", 1)
            return 3

        host, first = Host.start("Signaller", signaller)
        self.assertEqual(
            first.actions,
            [
                signal_entity(0, "counter", "k", "add", 1),
                signal_entity(1, "counter", "k", "add", 1),
                signal_entity(2, "counter", "other", "reset", None, T0 + 10 * SECOND),
                schedule(3, "A", None),
            ],
        )
        last = host.episode(T0 + SECOND, [task_completed(3, None)])
        self.assertEqual(last.actions, [signal_entity(4, "counter", "k", "add", 1), complete(3)])
        host.assert_replay_matches(self)

    def test_lock_entities_sorts_and_dedups_waits_for_the_grant_and_releases_once(self):
        host, first = Host.start("Transfer", self.transfer)
        self.assertEqual(first.actions, [lock(0, "account", "a", "b")])
        waiting = host.episode(T0 + SECOND, [entity_completed(0, 50), lock_granted(7)])
        self.assertEqual(waiting.actions, [], "no grant for this lock yet")
        granted = host.episode(T0 + SECOND, [lock_granted(0)])
        self.assertEqual(granted.actions, [call_entity(1, "account", "b", "balance", None)])
        withdraw = host.episode(T0 + 2 * SECOND, [entity_completed(1, 50)])
        self.assertEqual(withdraw.actions, [call_entity(2, "account", "b", "withdraw", 10)])
        deposit = host.episode(T0 + 3 * SECOND, [entity_completed(2)])
        self.assertEqual(deposit.actions, [call_entity(3, "account", "a", "deposit", 10)])
        last = host.episode(T0 + 4 * SECOND, [entity_completed(3)])
        self.assertEqual(last.actions, [unlock(4, "account", "a", "b"), complete(True)])
        unlocks = [a for a in host.actions if isinstance(a.kind, m.UnlockEntities)]
        self.assertEqual(len(unlocks), 1)
        host.assert_replay_matches(self)

    def test_a_held_lock_is_released_when_the_orchestrator_returns_or_fails(self):
        host, _ = Host.start("Transfer", self.transfer_without_with)
        host.episode(T0, [lock_granted(0)])
        poor = host.episode(T0, [entity_completed(1, 5)])
        self.assertEqual(poor.actions, [unlock(2, "account", "a", "b"), complete(False)])
        host.assert_replay_matches(self)

        host, _ = Host.start("Transfer", self.transfer_without_with)
        host.episode(T0, [lock_granted(0)])
        host.episode(T0, [entity_completed(1, 50)])
        failed = host.episode(T0, [entity_failed(2, "InsufficientFunds", "too poor")])
        self.assertEqual(failed.actions[0], unlock(3, "account", "a", "b"))
        self.assertEqual(failed.actions[1].kind.failure.error_type, "InsufficientFunds")
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

    def test_replaying_a_history_with_every_entity_action_issues_identical_actions(self):
        def everything(context):
            counter = df.EntityId("Counter", "k")
            context.signal_entity(counter, "reset")
            held = yield context.lock_entities([df.EntityId("Account", "a")])
            values = yield context.task_all(
                [
                    context.call_entity(counter, "get"),
                    context.call_entity(df.EntityId("Account", "a"), "balance"),
                ]
            )
            held.release()
            context.signal_entity(counter, "add", sum(values))
            return sum(values)

        host, first = Host.start("Everything", everything)
        self.assertEqual(len(first.actions), 2)
        self.assertEqual(len(host.episode(T0 + SECOND, [lock_granted(1)]).actions), 2)
        host.episode(T0 + 2 * SECOND, [entity_completed(3, 7)])
        last = host.episode(T0 + 3 * SECOND, [entity_completed(2, 3)])
        self.assertEqual(
            last.actions,
            [unlock(4, "account", "a"), signal_entity(5, "counter", "k", "add", 10), complete(10)],
        )
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
