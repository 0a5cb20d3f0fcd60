"""DFApp: decorators, names, the registry and activities."""

import unittest

from support import dumps  # noqa: F401 - support puts the SDK on the path

import durable_functions as df
from durable_functions import _model as m


class Registration(unittest.TestCase):
    def test_function_name_works_above_or_below_the_trigger_and_lists_kinds_sorted(self):
        app = df.DFApp()

        @app.function_name("Zeta")
        @app.orchestration_trigger(context_name="context")
        def orchestrate(context):
            yield context.call_activity("Double", 1)

        @app.activity_trigger(input_name="x")
        @app.function_name("Double")
        def double(x):
            return x * 2

        @app.activity_trigger(input_name="value", activity="Alpha")
        def alpha(value):
            return value

        @app.entity_trigger(context_name="context")
        def Counter(context):
            pass

        self.assertEqual(
            app.get_functions(),
            [("Zeta", "orchestrator"), ("Alpha", "activity"), ("Double", "activity"), ("Counter", "entity")],
        )
        # The decorators hand the function back unchanged.
        self.assertEqual(double(4), 8)

    def test_a_name_registered_twice_is_refused(self):
        app = df.DFApp()

        @app.function_name("Same")
        @app.activity_trigger(input_name="x")
        def one(x):
            return x

        @app.function_name("Same")
        @app.orchestration_trigger(context_name="context")
        def two(context):
            return None

        with self.assertRaisesRegex(ValueError, "registered twice"):
            app.get_functions()

    def test_an_entity_name_clashing_in_another_case_is_refused(self):
        app = df.DFApp()
        app.function_name("counter")(app.activity_trigger(input_name="x")(lambda x: x))
        app.function_name("COUNTER")(app.entity_trigger(context_name="context")(lambda context: None))
        with self.assertRaisesRegex(ValueError, "registered twice"):
            app.get_functions()

    def test_nothing_registers_once_the_app_is_frozen(self):
        app = df.DFApp()
        app.get_functions()
        with self.assertRaises(RuntimeError):
            app.activity_trigger(input_name="x")(lambda x: x)


class Activities(unittest.TestCase):
    def setUp(self):
        app = df.DFApp()

        @app.function_name("Double")
        @app.activity_trigger(input_name="number")
        def double(number: int) -> int:
            return number * 2

        @app.function_name("Positional")
        @app.activity_trigger(input_name="ignored")
        def positional(value):
            return [value]

        @app.function_name("WhoAmI")
        @app.activity_trigger(input_name="input")
        def who_am_i():
            call = df.activity_context()
            return f"{call.instance_id}#{call.task_scheduled_id}"

        class Boom(Exception):
            pass

        @app.function_name("Fail")
        @app.activity_trigger(input_name="input")
        def fail(input):
            raise Boom("always")

        @app.function_name("NaN")
        @app.activity_trigger(input_name="input")
        def nan(input):
            return float("nan")

        self.registry = app._registry()

    def run_activity(self, name, input):
        return self.registry.run_activity(name, input, "instance-1", 4)

    def test_input_is_decoded_and_output_encoded(self):
        self.assertEqual(self.run_activity("Double", "21"), "42")
        self.assertEqual(self.run_activity("Positional", '"x"'), '["x"]')
        self.assertEqual(self.run_activity("Positional", None), "[null]")
        self.assertEqual(self.run_activity("WhoAmI", None), '"instance-1#4"')
        self.assertIsNone(df.activity_context())

    def test_exceptions_become_failure_details(self):
        failure = self.run_activity("Fail", None)
        self.assertIsInstance(failure, m.FailureDetails)
        self.assertEqual((failure.error_type, failure.message), ("Boom", "always"))
        self.assertIn('raise Boom("always")', failure.details)
        self.assertEqual(self.run_activity("NaN", None).error_type, "SerializationError")
        missing = self.run_activity("Missing", None)
        self.assertEqual(missing.error_type, "ActivityNotFound")
        self.assertEqual(missing.message, "this app has no activity named 'Missing'")


class Entities(unittest.TestCase):
    def test_entities_are_found_by_name_in_any_case(self):
        app = df.DFApp()

        @app.function_name("Counter")
        @app.entity_trigger(context_name="context")
        def counter(context):
            context.set_state(context.get_state(lambda: 0) + context.get_input())
            context.set_result(context.get_state())

        registry = app._registry()
        batch = registry.run_entity(m.WitEntityId("counter", "k"), "1", [m.Operation("add", "2"), m.Operation("add", "3")])
        self.assertEqual(batch.results, ["3", "6"])
        self.assertEqual(batch.state, "6")
        batch = registry.run_entity(m.WitEntityId("cOuNtEr", "k"), None, [m.Operation("add", "2")])
        self.assertEqual(batch.state, "2")
        batch = registry.run_entity(m.WitEntityId("Double", "k"), None, [m.Operation("add", "2")])
        self.assertEqual(batch.results[0].error_type, "EntityNotFound")


if __name__ == "__main__":
    unittest.main()
