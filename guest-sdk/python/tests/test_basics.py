"""JSON encoding and the plain decoding of guest results, time formatting and the retry
limits. The tolerant decoding of inputs and the retry delays are corpus cases
(``tests/protocol/json.json``, ``retries.json``)."""

import unittest
from datetime import datetime, timezone

from support import dumps

import durable_functions as df
from durable_functions import _json, _time


class Json(unittest.TestCase):
    def test_results_written_by_guests_are_decoded_as_they_are(self):
        self.assertEqual(_json.decode(dumps(dumps({"a": 1}))), dumps({"a": 1}))

    def test_encoding_is_compact_keeps_unicode_and_refuses_nan(self):
        self.assertEqual(_json.encode({"a": [1, "é"]}, "x"), '{"a":[1,"é"]}')
        with self.assertRaisesRegex(df.SerializationError, "the thing could not be encoded as JSON"):
            _json.encode(float("inf"), "the thing")


class Time(unittest.TestCase):
    def test_iso8601_matches_the_dotnet_round_trip_format(self):
        self.assertEqual(_time.to_iso8601(0), "1970-01-01T00:00:00.0000000Z")
        self.assertEqual(_time.to_iso8601(1_709_214_330_123_456), "2024-02-29T13:45:30.1234560Z")
        self.assertEqual(_time.to_iso8601(-1), "1969-12-31T23:59:59.9999990Z")

    def test_datetimes_round_trip_through_microseconds(self):
        for micros in [0, 1, -1, 1_709_214_330_123_456, -86_400_000_001]:
            self.assertEqual(_time.from_datetime(_time.to_datetime(micros)), micros)
        naive = datetime(2024, 2, 29, 13, 45, 30, 123456)
        self.assertEqual(_time.from_datetime(naive), 1_709_214_330_123_456)
        self.assertEqual(_time.to_datetime(0).tzinfo, timezone.utc)


class Retry(unittest.TestCase):
    SECOND = 1_000_000

    def test_no_retry_after_the_last_attempt_or_past_the_timeout(self):
        retry = df.RetryOptions(10_000, 3, retry_timeout_in_milliseconds=15_000)
        self.assertEqual(retry.retry_at(1, 0, 0), 10 * self.SECOND)
        self.assertIsNone(retry.retry_at(2, 0, 5 * self.SECOND))
        self.assertIsNone(df.RetryOptions(1000, 2).retry_at(2, 0, 0))


if __name__ == "__main__":
    unittest.main()
