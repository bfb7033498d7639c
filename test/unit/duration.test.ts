import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { HqError } from '../../src/common/errors.js';
import {
  formatDuration,
  formatFixed,
  formatHumanDuration,
  formatMemAmount,
  formatSize,
  parseDuration,
  parseHumantime,
} from '../../src/common/duration.js';

const SEC = 1000;
const MIN = 60 * SEC;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

function assertDurationError(fn: () => unknown, message: string): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof HqError);
    assert.equal(error.code, 'HQ_INVALID_DURATION');
    assert.equal(error.message, message);
    return true;
  });
}

void describe('parseHumantime', () => {
  const cases: [string, number][] = [
    ['45ns', 0.000045],
    ['45nsec', 0.000045],
    ['45nanos', 0.000045],
    ['8us', 0.008],
    ['8usec', 0.008],
    ['8µs', 0.008],
    ['250ms', 250],
    ['250msec', 250],
    ['250millis', 250],
    ['7s', 7 * SEC],
    ['7sec', 7 * SEC],
    ['7secs', 7 * SEC],
    ['1second', SEC],
    ['7seconds', 7 * SEC],
    ['4m', 4 * MIN],
    ['4min', 4 * MIN],
    ['4mins', 4 * MIN],
    ['1minute', MIN],
    ['4minutes', 4 * MIN],
    ['3h', 3 * HOUR],
    ['3hr', 3 * HOUR],
    ['3hrs', 3 * HOUR],
    ['1hour', HOUR],
    ['3hours', 3 * HOUR],
    ['2d', 2 * DAY],
    ['1day', DAY],
    ['2days', 2 * DAY],
    ['2w', 14 * DAY],
    ['2wk', 14 * DAY],
    ['2wks', 14 * DAY],
    ['1week', 7 * DAY],
    ['2weeks', 14 * DAY],
    ['1M', 2_630_016 * SEC],
    ['1month', 2_630_016 * SEC],
    ['2months', 2 * 2_630_016 * SEC],
    ['1y', 31_557_600 * SEC],
    ['1yr', 31_557_600 * SEC],
    ['2yrs', 2 * 31_557_600 * SEC],
    ['1year', 31_557_600 * SEC],
    ['2years', 2 * 31_557_600 * SEC],
    // Combinations, with and without spaces.
    ['2h 45m', 2 * HOUR + 45 * MIN],
    ['3s 250ms', 3250],
    ['42s750ms', 42_750],
    ['1h5m10s', HOUR + 5 * MIN + 10 * SEC],
    ['10days 3min 4s', 10 * DAY + 3 * MIN + 4 * SEC],
    ['  6m  ', 6 * MIN],
    ['5 min', 5 * MIN],
    ['1\t2\tmin', 12 * MIN],
    // The same unit twice just adds up.
    ['1s 1s', 2 * SEC],
    // Fractions (humantime 2.4).
    ['2.5h', 2.5 * HOUR],
    ['0.25s', 250],
    ['1.5ms', 1.5],
    ['0.75min', 45 * SEC],
    ['0.5d', DAY / 2],
    ['3.000s', 3 * SEC],
    // A lone zero needs no unit.
    ['0', 0],
    ['0s', 0],
  ];
  for (const [text, expected] of cases) {
    void it(`parses ${JSON.stringify(text)}`, () => {
      assert.equal(parseHumantime(text), expected);
    });
  }

  const errors: [string, string][] = [
    ['', 'value was empty'],
    ['   ', 'value was empty'],
    ['15', 'time unit needed, for example 15sec or 15ms'],
    ['2h 7', 'time unit needed, for example 7sec or 7ms'],
    ['1.5', 'time unit needed, for example 1sec or 1ms'],
    [
      '3parsecs',
      'unknown time unit "parsecs", supported units: ns, us/µs, ms, sec, min, hours, days, ' +
        'weeks, months, years (and few variations)',
    ],
    [
      '3H',
      'unknown time unit "H", supported units: ns, us/µs, ms, sec, min, hours, days, ' +
        'weeks, months, years (and few variations)',
    ],
    ['hours', 'expected number at 0'],
    ['5m hours', 'expected number at 3'],
    ['-3s', 'expected number at 0'],
    ['4s,2m', 'invalid character at 2'],
    ['4_000s', 'invalid character at 1'],
    ['4.s', 'invalid character at 1'],
    ['4.', 'invalid character at 1'],
    ['4.2.1s', 'invalid character at 3'],
    // Byte offsets, as in Rust: `µ` takes two bytes.
    ['1µs 2é', 'invalid character at 6'],
    [
      '0.5ns',
      'number is too large or cannot be represented without a lack of precision ' +
        '(values below 1ns are not supported)',
    ],
    [
      '0.001h',
      'number is too large or cannot be represented without a lack of precision ' +
        '(values below 1ns are not supported)',
    ],
    [
      '18446744073709551616s',
      'number is too large or cannot be represented without a lack of precision ' +
        '(values below 1ns are not supported)',
    ],
    [
      '20000000000000ms',
      'number is too large or cannot be represented without a lack of precision ' +
        '(values below 1ns are not supported)',
    ],
  ];
  for (const [text, message] of errors) {
    void it(`rejects ${JSON.stringify(text)}`, () => {
      assertDurationError(() => parseHumantime(text), message);
    });
  }

  void it('accepts the largest second count that fits in u64', () => {
    assert.equal(parseHumantime('18446744073709551615s'), 18446744073709551615 * 1000);
  });
});

void describe('parseDuration', () => {
  const cases: [string, number][] = [
    ['90', 90 * SEC],
    ['0', 0],
    ['007', 7 * SEC],
    ['2:05', 2 * MIN + 5 * SEC],
    ['75:00', 75 * MIN],
    ['1:00:00', HOUR],
    ['03:04:05', 3 * HOUR + 4 * MIN + 5 * SEC],
    ['0:0:130', 130 * SEC],
    ['36:00:00', 36 * HOUR],
    ['1_200', 1200 * SEC],
    ['2_:3', 2 * MIN + 3 * SEC],
    // Anything else goes to humantime.
    ['2hours', 2 * HOUR],
    ['1h 30m', 90 * MIN],
    ['500ms', 500],
    ['1.5h', 90 * MIN],
  ];
  for (const [text, expected] of cases) {
    void it(`parses ${JSON.stringify(text)}`, () => {
      assert.equal(parseDuration(text), expected);
    });
  }

  const prefix =
    'Could not parse PBS walltime. Use either `HH:MM:SS` or humantime format (2hours): ';
  const errors: [string, string][] = [
    ['', 'Empty'],
    ['1:2:3:4', 'InvalidCharacter(1)'],
    ['5:', 'InvalidCharacter(1)'],
    [':30', 'NumberExpected(0)'],
    ['1: 2', 'InvalidCharacter(1)'],
    ['_5', 'NumberExpected(0)'],
    ['4294967296', 'UnknownUnit { start: 10, end: 10, unit: "", value: 4294967296 }'],
    ['12 parsecs', 'UnknownUnit { start: 3, end: 10, unit: "parsecs", value: 12 }'],
    ['0.5ns', 'NumberOverflow'],
  ];
  for (const [text, detail] of errors) {
    void it(`rejects ${JSON.stringify(text)}`, () => {
      assertDurationError(() => parseDuration(text), prefix + detail);
    });
  }
});

void describe('formatDuration', () => {
  const cases: [number, string][] = [
    [0, '0s'],
    [SEC, '1s'],
    [1250, '1s 250ms'],
    [42 * SEC, '42s'],
    [MIN, '1m'],
    [3 * MIN + 7 * SEC, '3m 7s'],
    [2 * HOUR + 15 * MIN, '2h 15m'],
    [DAY, '1day'],
    [3 * DAY + 4 * HOUR, '3days 4h'],
    [2_630_016 * SEC, '1month'],
    [2 * 2_630_016 * SEC + DAY, '2months 1day'],
    [31_557_600 * SEC, '1year'],
    [2 * 31_557_600 * SEC + 5 * SEC, '2years 5s'],
    // A plain 30 days is not yet a month of 30.44 days.
    [30 * DAY, '30days'],
    [0.5, '500us'],
    [0.000_007, '7ns'],
    [1.002_003, '1ms 2us 3ns'],
    [HOUR + 0.001, '1h 1us'],
  ];
  for (const [ms, expected] of cases) {
    void it(`formats ${ms} ms as ${JSON.stringify(expected)}`, () => {
      assert.equal(formatDuration(ms), expected);
    });
  }

  void it('round-trips through parseHumantime', () => {
    for (const ms of [1, 999, 61_001, 7 * DAY + 3, 400 * DAY, 0.123_456]) {
      assert.equal(parseHumantime(formatDuration(ms)), ms);
    }
  });

  for (const bad of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
    void it(`rejects ${bad}`, () => {
      assert.throws(
        () => formatDuration(bad),
        (error: unknown) => error instanceof HqError && error.code === 'HQ_INVALID_DURATION',
      );
    });
  }
});

void describe('formatHumanDuration', () => {
  const cases: [number, string][] = [
    [0, '0s'],
    [0.4, '0s'],
    [2500.9, '2s 500ms'],
    [59_999, '59s 999ms'],
    [MIN + 500, '1m'],
    [2 * MIN + 3 * SEC + 999, '2m 3s'],
    [HOUR - 1, '59m 59s'],
    [HOUR + 59 * SEC, '1h'],
    [58 * MIN + 49 * SEC + 300, '58m 49s'],
    [5 * HOUR + 6 * MIN + 7 * SEC, '5h 6m'],
    [9 * DAY + 2 * HOUR + 3 * MIN + 4 * SEC, '9days 2h 3m'],
    [-5, 'Invalid duration'],
    [Number.NaN, 'Invalid duration'],
  ];
  for (const [ms, expected] of cases) {
    void it(`formats ${ms} ms as ${JSON.stringify(expected)}`, () => {
      assert.equal(formatHumanDuration(ms), expected);
    });
  }
});

void describe('formatFixed', () => {
  const cases: [number, number, string][] = [
    [1.5, 2, '1.50'],
    [0, 2, '0.00'],
    [12, 0, '12'],
    // Exact binary ties go to the even digit, as Rust does.
    [0.125, 2, '0.12'],
    [0.375, 2, '0.38'],
    [2.5, 0, '2'],
    [3.5, 0, '4'],
    // 0.145 is stored slightly below the tie, so it rounds down.
    [0.145, 2, '0.14'],
    [1e21, 1, '1000000000000000000000.0'],
    [-1.25, 1, '-1.2'],
  ];
  for (const [value, decimals, expected] of cases) {
    void it(`formats ${value} with ${decimals} decimals`, () => {
      assert.equal(formatFixed(value, decimals), expected);
    });
  }
});

void describe('formatSize', () => {
  const cases: [number, string][] = [
    [0, '0 B'],
    [7, '7 B'],
    [2047, '2047 B'],
    [2048, '2.00 KiB'],
    [123_456, '120.56 KiB'],
    // 2176 / 1024 = 2.125 exactly: the tie rounds to even.
    [2176, '2.12 KiB'],
    [2 * 1024 * 1024 - 1, '2048.00 KiB'],
    [2 * 1024 * 1024, '2.00 MiB'],
    [75_000_000, '71.53 MiB'],
    [2 * 1024 * 1024 * 1024, '2.00 GiB'],
    [1_000_000_000_000, '931.32 GiB'],
  ];
  for (const [bytes, expected] of cases) {
    void it(`formats ${bytes} bytes`, () => {
      assert.equal(formatSize(bytes), expected);
    });
  }
});

void describe('formatMemAmount', () => {
  const cases: [number, string][] = [
    [0, '0.00 MiB'],
    [100.1, '100.10 MiB'],
    [0.125, '0.12 MiB'],
    [511.99, '511.99 MiB'],
    [512, '0.50 GiB'],
    [2048, '2.00 GiB'],
    [257_000, '250.98 GiB'],
  ];
  for (const [mib, expected] of cases) {
    void it(`formats ${mib} MiB`, () => {
      assert.equal(formatMemAmount(mib), expected);
    });
  }
});
