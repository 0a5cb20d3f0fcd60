"""The componentize glue (durable_functions.component) on plain CPython, against the Python
bindings componentize-py generates for wit/durable.wit.

The bindings are looked for in $DURABLE_PY_BINDINGS, else target/polyglot/python-bindings
(gitignored), which is generated there with `componentize-py bindings` when a
componentize-py is found (target/polyglot/python-venv or PATH). Without either, the tests
are skipped.
"""

import importlib
import os
import shutil
import subprocess
import sys
import types
import unittest

from support import T0  # noqa: F401 - support puts the SDK on the path

import durable_functions as df

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def _bindings_dir():
    configured = os.environ.get("DURABLE_PY_BINDINGS")
    if configured:
        return configured if os.path.isdir(os.path.join(configured, "wit_world")) else None
    directory = os.path.join(ROOT, "target", "polyglot", "python-bindings")
    if os.path.isdir(os.path.join(directory, "wit_world")):
        return directory
    componentize = os.path.join(ROOT, "target", "polyglot", "python-venv", "bin", "componentize-py")
    if not os.path.exists(componentize):
        componentize = shutil.which("componentize-py")
    if componentize is None:
        return None
    command = [componentize, "-d", os.path.join(ROOT, "wit"), "-w", "app", "bindings", directory]
    if subprocess.run(command, capture_output=True).returncode != 0:
        return None
    return directory


def _test_app():
    """The app the glue exports in these tests."""
    app = df.DFApp()

    @app.function_name("Flow")
    @app.orchestration_trigger(context_name="context")
    def flow(context):
        context.set_custom_status("started")
        counter = df.EntityId("Counter", "k")
        context.signal_entity(counter, "add", 1)
        value = yield context.call_activity("Echo", context.get_input())
        held = yield context.lock_entities(counter)
        total = yield context.call_entity(counter, "get")
        held.release()
        event = yield context.wait_for_external_event("Go")
        context.continue_as_new([value, total, event])

    @app.function_name("Echo")
    @app.activity_trigger(input_name="value")
    def echo(value):
        return value

    class Boom(Exception):
        pass

    @app.function_name("Boom")
    @app.activity_trigger(input_name="value")
    def boom(value):
        raise Boom("always")

    @app.function_name("Counter")
    @app.entity_trigger(context_name="context")
    def counter(context):
        if context.operation_name == "fail":
            raise Boom("no")
        context.set_state(context.get_state(lambda: 0) + context.get_input())
        context.signal_entity(df.EntityId("Other", "x"), "seen", context.get_input())
        context.set_result(context.get_state())

    return app


class Glue(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        bindings = _bindings_dir()
        if bindings is None:
            raise unittest.SkipTest("no componentize-py bindings (run install-toolchain.sh)")
        cls.saved_path = list(sys.path)
        cls.saved_modules = dict(sys.modules)
        sys.path.insert(0, bindings)
        app_module = types.ModuleType("function_app")
        app_module.app = _test_app()
        sys.modules["function_app"] = app_module
        cls.component = importlib.import_module("durable_functions.component")
        from wit_world.exports import entity, registry
        from wit_world.imports import types as wit

        cls.wit, cls.wit_entity, cls.wit_registry = wit, entity, registry

    @classmethod
    def tearDownClass(cls):
        sys.path[:] = cls.saved_path
        for name in list(sys.modules):
            if name not in cls.saved_modules:
                del sys.modules[name]
        sys.modules.update(cls.saved_modules)

    def event(self, kind, timestamp=T0):
        return self.wit.HistoryEvent(-1, timestamp, kind)

    def test_the_registry_lists_every_function_with_its_kind(self):
        kinds = self.wit_registry.FunctionKind
        listed = [(f.name, f.kind) for f in self.component.Registry().functions()]
        self.assertEqual(
            listed,
            [
                ("Flow", kinds.ORCHESTRATOR),
                ("Boom", kinds.ACTIVITY),
                ("Echo", kinds.ACTIVITY),
                ("Counter", kinds.ENTITY),
            ],
        )

    def test_the_resource_lives_in_the_module_componentize_py_looks_in(self):
        self.assertIs(sys.modules["orchestrator"].Orchestration, self.component.Orchestration)

    def test_an_orchestration_converts_events_in_and_actions_out(self):
        wit = self.wit
        orchestration = self.component.Orchestration("Flow", "instance-1")
        started = wit.EventKind_ExecutionStarted(wit.ExecutionStarted("Flow", "instance-1", '"x"', None))
        first = orchestration.apply([self.event(wit.EventKind_OrchestratorStarted()), self.event(started)], False)
        self.assertEqual(first.custom_status, '"started"')
        self.assertEqual(
            first.actions,
            [
                wit.Action(
                    0,
                    wit.ActionKind_SignalEntity(
                        wit.EntityOperationSignaled(wit.EntityId("counter", "k"), "add", "1", None)
                    ),
                ),
                wit.Action(1, wit.ActionKind_ScheduleTask(wit.ScheduleTask("Echo", '"x"'))),
            ],
        )
        second = orchestration.apply(
            [
                self.event(wit.EventKind_OrchestratorStarted()),
                self.event(wit.EventKind_TaskCompleted(wit.TaskCompleted(1, '"x"'))),
            ],
            False,
        )
        self.assertEqual(
            second.actions, [wit.Action(2, wit.ActionKind_LockEntities([wit.EntityId("counter", "k")]))]
        )
        third = orchestration.apply(
            [self.event(wit.EventKind_OrchestratorStarted()), self.event(wit.EventKind_EntityLockGranted(2))],
            False,
        )
        self.assertEqual(
            third.actions,
            [
                wit.Action(
                    3, wit.ActionKind_CallEntity(wit.EntityOperationCalled(wit.EntityId("counter", "k"), "get", "null"))
                )
            ],
        )
        last = orchestration.apply(
            [
                self.event(wit.EventKind_OrchestratorStarted()),
                self.event(wit.EventKind_EntityOperationCompleted(wit.EntityOperationCompleted(3, "4"))),
                self.event(wit.EventKind_EventRaised(wit.EventRaised("Go", "true"))),
                self.event(wit.EventKind_EventRaised(wit.EventRaised("Later", "1"))),
                self.event(wit.EventKind_OrchestratorCompleted()),
            ],
            True,
        )
        self.assertEqual(
            last.actions,
            [
                wit.Action(4, wit.ActionKind_UnlockEntities([wit.EntityId("counter", "k")])),
                wit.Action(
                    -1,
                    wit.ActionKind_ContinueAsNew(
                        wit.ContinueAsNew('["x",4,true]', [wit.CarriedEvent("Later", "1")])
                    ),
                ),
            ],
        )

    def test_an_unknown_orchestrator_fails(self):
        wit = self.wit
        orchestration = self.component.Orchestration("Nope", "instance-1")
        result = orchestration.apply([self.event(wit.EventKind_OrchestratorStarted())], False)
        self.assertEqual(len(result.actions), 1)
        self.assertIsInstance(result.actions[0].kind, wit.ActionKind_Fail)
        self.assertEqual(result.actions[0].kind.value.error_type, "OrchestratorNotFound")

    def test_an_activity_returns_its_output_or_raises_err_with_the_failure(self):
        from componentize_py_types import Err

        context = self.wit.ActivityContext("instance-1", 0)
        self.assertEqual(self.component.Activity().run("Echo", '{"a":1}', context), '{"a":1}')
        with self.assertRaises(Err) as raised:
            self.component.Activity().run("Boom", None, context)
        failure = raised.exception.value
        self.assertIsInstance(failure, self.wit.FailureDetails)
        self.assertEqual((failure.error_type, failure.message), ("Boom", "always"))

    def test_an_entity_batch_converts_results_and_actions(self):
        from componentize_py_types import Err, Ok

        wit, entity = self.wit, self.wit_entity
        batch = self.component.Entity().run(
            wit.EntityId("counter", "k"),
            "1",
            [entity.Operation("add", "2"), entity.Operation("fail", None)],
        )
        self.assertEqual(batch.state, "3")
        self.assertEqual(batch.results[0], Ok("3"))
        self.assertIsInstance(batch.results[1], Err)
        self.assertEqual(batch.results[1].value.error_type, "Boom")
        self.assertEqual(
            batch.actions,
            [entity.EntityAction_SignalEntity(entity.SignalEntity(wit.EntityId("other", "x"), "seen", "2", None))],
        )


if __name__ == "__main__":
    unittest.main()
