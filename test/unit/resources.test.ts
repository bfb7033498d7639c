import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { HqError } from '../../src/common/errors.js';
import {
  allocRequestFromJson,
  allocRequestToJson,
  amountFromFloat,
  buildDescriptor,
  descriptorKindGroups,
  descriptorKindSize,
  descriptorToJson,
  formatAllocRequest,
  formatAmount,
  formatDescriptorKind,
  formatF32,
  formatResourceVariants,
  humanMemAmount,
  isValidResourceName,
  parseAllocRequest,
  parseAmount,
  parseCpuDefinition,
  parseResourceCoupling,
  parseResourceDefinition,
  parseResourceDefinitionValue,
  parseResourceRequest,
  parseResourceWeight,
  resourceEnvName,
  resourcesFullDescribe,
  resourcesSummary,
  validateResourceVariants,
} from '../../src/common/resources.js';
import type {
  ResourceAllocRequest,
  ResourceDescriptor,
  ResourceDescriptorItem,
  ResourceDescriptorKind,
  ResourceRequest,
} from '../../src/common/resources.js';

/** Asserts that `run` throws an HQ_INVALID_RESOURCE error whose one-line message matches. */
function assertInvalid(run: () => unknown, message: RegExp | string): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof HqError, `expected HqError, got ${String(error)}`);
    assert.equal(error.code, 'HQ_INVALID_RESOURCE');
    assert.ok(!error.message.includes('\n'), `multi-line message: ${error.message}`);
    if (typeof message === 'string') {
      assert.equal(error.message, message);
    } else {
      assert.match(error.message, message);
    }
    return true;
  });
}

const range = (start: number, end: number): ResourceDescriptorKind => ({
  kind: 'range',
  start,
  end,
});
const list = (...values: string[]): ResourceDescriptorKind => ({ kind: 'list', values });
const groups = (...gs: string[][]): ResourceDescriptorKind => ({ kind: 'groups', groups: gs });
const sum = (size: number): ResourceDescriptorKind => ({ kind: 'sum', size });
const item = (name: string, kind: ResourceDescriptorKind): ResourceDescriptorItem => ({
  name,
  ...kind,
});
const amount = (n: number, policy: 'compact' | 'compact!' | 'tight' | 'tight!' | 'scatter') =>
  ({ kind: 'amount', amount: n, policy }) as const;

void describe('amounts', () => {
  void it('parses valid amounts', () => {
    const cases: [string, number][] = [
      ['2', 20000],
      ['0', 0],
      ['0.5', 5000],
      ['1.2345', 12345],
      ['0.0001', 1],
      ['10.10', 101000],
      ['1_000', 10_000_000],
      ['3.0_5', 30500],
      [' 7 ', 70000],
      ['4294967295.9999', 42949672959999],
    ];
    for (const [text, expected] of cases) {
      assert.equal(parseAmount(text), expected, text);
    }
  });

  void it('rejects invalid amounts', () => {
    const cases: [string, RegExp][] = [
      ['-1', /Invalid resource amount '-1': .*negative/],
      ['1.23456', /Invalid resource amount '1\.23456': Resource precision exceeded/],
      ['abc', /Invalid resource amount 'abc': unexpected `a` at position 0/],
      ['', /Invalid resource amount '': unexpected end of input/],
      ['1.', /unexpected `\.` at position 1, expected end of input/],
      ['.5', /unexpected `\.` at position 0/],
      ['1e3', /unexpected `e` at position 1/],
      ['4294967296', /cannot be parsed as a 4-byte unsigned integer/],
    ];
    for (const [text, message] of cases) {
      assertInvalid(() => parseAmount(text), message);
    }
  });

  void it('formats amounts like upstream Display', () => {
    const cases: [number, string][] = [
      [0, '0'],
      [1, '0.0001'],
      [20000, '2'],
      [5000, '0.5'],
      [12345, '1.2345'],
      [5_000_123, '500.0123'],
      [5_009_999, '500.9999'],
      [12200, '1.22'],
      [13410, '1.341'],
    ];
    for (const [value, expected] of cases) {
      assert.equal(formatAmount(value), expected, String(value));
    }
  });

  void it('converts floats with single precision, rounding up', () => {
    const cases: [number, number][] = [
      [2, 20000],
      [1.1, 11000],
      [20.0001, 200001],
      [0.5, 5000],
    ];
    for (const [value, expected] of cases) {
      assert.equal(amountFromFloat(value), expected, String(value));
    }
  });

  void it('formats memory like human_mem_amount (f32, ties to even)', () => {
    const cases: [number, string][] = [
      [(4 * 1024 + 123) * 10000, '4.12 GiB'],
      [100 * 10000, '100.00 MiB'],
      [1250, '0.12 MiB'], // 0.125 is a tie, rounded to even
      [3750, '0.38 MiB'],
      [6250, '0.62 MiB'],
      [512 * 10000, '0.50 GiB'],
      [511 * 10000, '511.00 MiB'],
      [0, '0.00 MiB'],
    ];
    for (const [value, expected] of cases) {
      assert.equal(humanMemAmount(value), expected, String(value));
    }
  });

  void it('formats f32 values like Rust Display', () => {
    const cases: [number, string][] = [
      [11.2, '11.2'],
      [2, '2'],
      [0.1, '0.1'],
      [1e-7, '0.0000001'],
      [1e21, '1000000000000000000000'],
      [1234.5, '1234.5'],
    ];
    for (const [value, expected] of cases) {
      assert.equal(formatF32(value), expected, String(value));
    }
  });
});

void describe('resource descriptors', () => {
  void it('parses --cpus definitions', () => {
    const cases: [string, ResourceDescriptorKind][] = [
      ['4', range(0, 3)],
      ['1', range(0, 0)],
      ['+4', range(0, 3)],
      ['1x5', range(0, 4)],
      ['2x3', groups(['0', '1', '2'], ['3', '4', '5'])],
      ['[0, 5, 7]', list('0', '5', '7')],
      ['[[5, 7, 123]]', list('5', '7', '123')],
      ['[[0,1],[2,3]]', groups(['0', '1'], ['2', '3'])],
      ['range(1-3)', range(1, 3)],
      [' [1] ', list('1')],
    ];
    for (const [text, expected] of cases) {
      assert.deepEqual(parseCpuDefinition(text), expected, text);
    }
  });

  void it('rejects invalid --cpus definitions', () => {
    const sumMessage = 'Resource kind `sum` cannot be used with CPUs. CPUs must have identity';
    const cases: [string, RegExp | string][] = [
      ['sum(4)', sumMessage],
      ['0', sumMessage],
      ['0x4', /Invalid CPU definition '0x4': .*must be positive/],
      ['2x0', /must be positive/],
      ['2x3 ', /unexpected ` ` at position 3, expected end of input/],
      [' 4', /Invalid CPU definition ' 4': unexpected ` ` at position 0/],
      ['4_0', /a plain number is accepted only by --cpus/],
      [
        'foo',
        /Invalid CPU definition 'foo': unexpected `f` at position 0, expected a resource kind/,
      ],
      ['', /unexpected end of input/],
    ];
    for (const [text, message] of cases) {
      assertInvalid(() => parseCpuDefinition(text), message);
    }
  });

  void it('parses --resource definitions', () => {
    const cases: [string, ResourceDescriptorItem][] = [
      ['gpus=[0,1]', item('gpus', list('0', '1'))],
      ['mem=[1]', item('mem', list('1'))],
      ['   mem    =   [   1  ] ', item('mem', list('1'))],
      ['x=[a, "b c" ,3]', item('x', list('a', 'b c', '3'))],
      ['x=["a,b,[c]", d]', item('x', list('a,b,[c]', 'd'))],
      ['x=[ " sp  ace" ]', item('x', list(' sp  ace'))],
      ['gpu=range(10-123)', item('gpu', range(10, 123))],
      ['  gpu  =  range  ( 10 -  123 ) ', item('gpu', range(10, 123))],
      ['r=range(5-5)', item('r', range(5, 5))],
      ['cpus=2x3', item('cpus', groups(['0', '1', '2'], ['3', '4', '5']))],
      ['cpus= 2x2', item('cpus', groups(['0', '1'], ['2', '3']))],
      ['cpus=[[5, 7, 123]]', item('cpus', list('5', '7', '123'))],
      ['cpus=[[0],[7],[123, 200]]', item('cpus', groups(['0'], ['7'], ['123', '200']))],
      [
        'cpus=[   [ 0 ] ,  [ 7  ] , [ 123  ,  200 ]  ]',
        item('cpus', groups(['0'], ['7'], ['123', '200'])),
      ],
      ['mem=sum(1_3000_2000)', item('mem', sum(1_3000_2000 * 10000))],
      ['mem=sum(1.5)', item('mem', sum(15000))],
      ['   mem  = sum ( 100 ) ', item('mem', sum(1_000_000))],
      ['gpus/nvidia=[0]', item('gpus/nvidia', list('0'))],
      ['A9b=[x]', item('A9b', list('x'))],
    ];
    for (const [text, expected] of cases) {
      assert.deepEqual(parseResourceDefinition(text), expected, text);
    }
  });

  void it('rejects invalid --resource definitions', () => {
    const cases: [string, RegExp][] = [
      ['', /Invalid resource definition '': unexpected end of input, expected a resource name/],
      ['1a=[1]', /unexpected `1` at position 0, expected a resource name/],
      ['=[1]', /unexpected `=` at position 0, expected a resource name/],
      ['a_b=[1]', /invalid character `_` in resource name 'a_b'/],
      ['a-b=[1]', /invalid character `-` in resource name 'a-b'/],
      ['x', /unexpected end of input, expected `=`/],
      ['x=', /unexpected end of input, expected a resource kind/],
      ['x=foo', /unexpected `f` at position 2, expected a resource kind/],
      ['x=sum', /unexpected end of input, expected `\(`/],
      ['x=1', /a plain number is accepted only by --cpus/],
      ['x=-1', /cannot be negative/],
      ['x=2y3', /unexpected `y` at position 3, expected `x`/],
      ['x=[]', /list has to contain at least a single element/],
      ['x=[ ]', /list has to contain at least a single element/],
      ['x=[1,2,1]', /list items have to be unique/],
      ['x=[1,]', /unexpected `\]` at position 5, expected a label/],
      ['x=[,1]', /unexpected `,` at position 3, expected a label/],
      ['x=[1', /unexpected end of input, expected `,` or `\]`/],
      ['x=[1 2]', /unexpected `2` at position 5, expected `,` or `\]`/],
      ['x=[""]', /unexpected `"` at position 3, expected a label/],
      ['x=["ab]', /unterminated quoted label/],
      ['x=[1]]', /unexpected `\]` at position 5, expected end of input/],
      ['xxx=[[1]', /unexpected end of input, expected `,` or `\]`/],
      ['cpus=[[0, 1], []]', /each group has to contain at least a single element/],
      ['cpus=[[]]', /each group has to contain at least a single element/],
      ['cpus=[[0,0],[1]]', /group items have to be unique/],
      ['cpus=[[0,0]]', /group items have to be unique/],
      ['gpu=range()', /unexpected `\)` at position 10, expected the start of the range/],
      ['gpu=range(10)', /unexpected `\)` at position 12, expected `-`/],
      ['gpu=range(5-3)', /start of the range \(5\) must be less than or equal to its end \(3\)/],
      ['gpu=range(1-2', /unexpected end of input, expected `\)`/],
      ['gpu=ranges(1-2)', /expected a resource kind/],
      ['x=sum()', /unexpected `\)` at position 6, expected an amount/],
      ['x=sum(x)', /unexpected `x` at position 6, expected an amount/],
      ['x=sum(1.23456)', /Resource precision exceeded/],
      ['x=sum(-5)', /cannot be negative/],
    ];
    for (const [text, message] of cases) {
      assertInvalid(() => parseResourceDefinition(text), message);
    }
  });

  void it('parses a bare definition value', () => {
    assert.deepEqual(parseResourceDefinitionValue('sum(2000)'), sum(20_000_000));
    assert.deepEqual(parseResourceDefinitionValue('  [a,b]'), list('a', 'b'));
    assert.deepEqual(parseResourceDefinitionValue('3x1'), groups(['0'], ['1'], ['2']));
    assertInvalid(
      () => parseResourceDefinitionValue('4'),
      /Invalid resource definition '4': a plain number/,
    );
    assertInvalid(() => parseResourceDefinitionValue('[a'), /expected `,` or `\]`/);
  });

  void it('validates names', () => {
    const cases: [string, boolean][] = [
      ['cpus', true],
      ['gpus/nvidia', true],
      ['a1', true],
      ['1a', false],
      ['a_b', false],
      ['a-b', false],
      ['', false],
      ['/a', false],
    ];
    for (const [name, valid] of cases) {
      assert.equal(isValidResourceName(name), valid, name);
    }
  });

  void it('computes sizes and groups', () => {
    const cases: [ResourceDescriptorKind, number, string[][]][] = [
      [range(0, 9), 100000, [['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']]],
      [range(5, 4), 0, [[]]],
      [list('a', 'b'), 20000, [['a', 'b']]],
      [groups(['0'], ['1', '2']), 30000, [['0'], ['1', '2']]],
      [sum(12345), 12345, []],
    ];
    for (const [kind, size, gs] of cases) {
      assert.equal(descriptorKindSize(kind), size);
      assert.deepEqual(descriptorKindGroups(kind), gs);
    }
  });

  void it('builds descriptors sorted by name', () => {
    const d = buildDescriptor(
      [
        item('mem', sum(10000)),
        item('gpus/nvidia', list('0')),
        item('cpus', range(0, 3)),
        item('Z', list('q')),
      ],
      { needsCpus: true },
    );
    assert.deepEqual(
      d.resources.map((r) => r.name),
      ['Z', 'cpus', 'gpus/nvidia', 'mem'],
    );
    assert.deepEqual(d.coupling, { weights: [] });
  });

  void it('rejects invalid descriptors', () => {
    const cases: [
      ResourceDescriptorItem[],
      RegExp | string,
      { needsCpus?: boolean; coupling?: string },
    ][] = [
      [[item('a', list('1')), item('a', list('2'))], 'Resource a defined twice', {}],
      [
        [item('cpus', groups(['0', '1'], ['1', '2']))],
        'Invalid resource definition for cpus: GenericError("Non unique indices")',
        {},
      ],
      [[item('disk', sum(0))], 'Resource disk is empty', {}],
      [
        [item('cpus', sum(10000))],
        'Resource kind `sum` cannot be used with CPUs. CPUs must have identity',
        {},
      ],
      [[item('gpus', list('0'))], "Resource 'cpus' is missing", { needsCpus: true }],
    ];
    for (const [items, message, options] of cases) {
      assertInvalid(() => buildDescriptor(items, options), message);
    }
    // Not required unless asked for.
    assert.equal(buildDescriptor([item('gpus', list('0'))]).resources.length, 1);
  });

  void it('parses and validates coupling', () => {
    const items = [
      item('gpus', groups(['a'], ['b'])),
      item('cpus', groups(['0', '1'], ['2', '3'])),
      item('mem', sum(10000)),
    ];
    const d = buildDescriptor(items, { coupling: 'gpus[1]:cpus[1]=3, cpus[0] : gpus[0]' });
    assert.deepEqual(d.coupling.weights, [
      { resource1Idx: 0, group1Idx: 0, resource2Idx: 1, group2Idx: 0, weight: 256 },
      { resource1Idx: 0, group1Idx: 1, resource2Idx: 1, group2Idx: 1, weight: 3 },
    ]);
    assert.equal(
      resourcesSummary(d, false),
      'cpus 2x2 [coupled]; gpus 2x1 [coupled]; mem 1.00 MiB',
    );
    assert.deepEqual(descriptorToJson(d).coupling.weights, [
      { resource1_idx: 0, group1_idx: 0, resource2_idx: 1, group2_idx: 0, weight: 256 },
      { resource1_idx: 0, group1_idx: 1, resource2_idx: 1, group2_idx: 1, weight: 3 },
    ]);

    const sorted = d.resources;
    const parseCases: [string, RegExp][] = [
      ['cpus[0]gpus[0]', /Missing ':'/],
      ['cpus[0:gpus[0]', /Missing '\]'/],
      ['cpus0]:gpus[0]', /Missing '\['/],
      ['foo[0]:gpus[0]', /Resource not found: foo/],
      ['cpus[x]:gpus[0]', /Invalid group index: x/],
      ['cpus[256]:gpus[0]', /Invalid group index: 256/],
      ['cpus[0]:gpus[0]=70000', /Invalid weight: 70000/],
      ['cpus[0]:gpus[0]=', /Invalid weight: $/],
    ];
    for (const [text, message] of parseCases) {
      assertInvalid(() => parseResourceCoupling(text, sorted), message);
    }

    const validateCases: [string, RegExp | string][] = [
      ['cpus[0]:gpus[0],gpus[0]:cpus[0]=5', 'Repeated coupling definition'],
      ['cpus[0]:mem[0]', "Resource 'mem' has only a single group"],
      ['cpus[2]:gpus[0]', "Invalid group id 2 for resource 'cpus'"],
    ];
    for (const [text, message] of validateCases) {
      assertInvalid(() => buildDescriptor(items, { coupling: text }), message);
    }
  });

  void it('summarizes resources as upstream', () => {
    const cases: [ResourceDescriptorItem[], string, string][] = [
      [[item('cpus', parseCpuDefinition('10'))], 'cpus 10', 'cpus: 10'],
      [[item('cpus', parseCpuDefinition('4x5'))], 'cpus 4x5', 'cpus: 4x5'],
      [[item('cpus', parseCpuDefinition('1'))], 'cpus 1', 'cpus: 1'],
      [
        [item('cpus', parseCpuDefinition('[[100,200,300],[400,500,600]]'))],
        'cpus 2x3',
        'cpus: 2x3',
      ],
      [
        [item('cpus', parseCpuDefinition('[[0,1],[2],[10,11,12]]'))],
        'cpus 1x1 1x2 1x3',
        'cpus: 1x1 1x2 1x3',
      ],
      [
        [
          item('cpus', groups(['0', '1', '2', '4'], ['10', '11', '12', '14'])),
          item('gpus', list('4', '7')),
          item('mmmem', sum(12_340_000)),
          item(
            'zzz',
            groups(
              ['0', '1'],
              ['10', '11'],
              ['20', '21'],
              ['30', '31'],
              ['40', '41'],
              ['5', '6', '7', '8', '9', 'a'],
            ),
          ),
        ],
        'cpus 2x4; gpus 2; mmmem 1234; zzz 5x2 1x6',
        'cpus: 2x4\ngpus: 2\nmmmem: 1234\nzzz: 5x2 1x6',
      ],
      [
        [item('cpus', range(0, 7)), item('mem', sum((4 * 1024 + 123) * 10000))],
        'cpus 8; mem 4.12 GiB',
        'cpus: 8\nmem: 4.12 GiB',
      ],
      [
        [item('cpus', range(0, 1)), item('disk', sum(15000))],
        'cpus 2; disk 1.5',
        'cpus: 2\ndisk: 1.5',
      ],
    ];
    for (const [items, single, multi] of cases) {
      const d = buildDescriptor(items);
      assert.equal(resourcesSummary(d, false), single);
      assert.equal(resourcesSummary(d, true), multi);
    }
  });

  void it('describes resources in full', () => {
    const d = buildDescriptor([
      item('mem', sum(12_340_000)),
      item('gpus', list('4', '7')),
      item('cpus', groups(['0', '1', '2', '4'], ['10', '11', '12', '14'])),
      item('one', range(3, 3)),
      item('r', range(0, 7)),
    ]);
    assert.equal(
      resourcesFullDescribe(d),
      'cpus: [[0,1,2,4],[10,11,12,14]]\ngpus: [4,7]\nmem: sum(1234)\none: [3]\nr: range(0-7)',
    );
    assert.equal(formatDescriptorKind(sum(15000)), 'sum(1.5)');
  });

  void it('produces the worker configuration JSON', () => {
    const d: ResourceDescriptor = buildDescriptor([
      item('mem', sum(10_240_000)),
      item('gpus/nvidia', list('0', '1')),
      item('cpus', range(0, 7)),
      item('sockets', groups(['0', '1'], ['2', '3'])),
    ]);
    assert.deepEqual(descriptorToJson(d), {
      coupling: { weights: [] },
      resources: [
        { kind: 'range', name: 'cpus', start: 0, end: 7 },
        { kind: 'list', name: 'gpus/nvidia', values: ['0', '1'] },
        { kind: 'sum', name: 'mem', size: 10_240_000 },
        {
          kind: 'groups',
          name: 'sockets',
          groups: [
            ['0', '1'],
            ['2', '3'],
          ],
        },
      ],
    });
  });
});

void describe('resource requests', () => {
  void it('parses allocation requests', () => {
    const cases: [string, ResourceAllocRequest][] = [
      ['4', amount(40000, 'compact')],
      ['4 compact', amount(40000, 'compact')],
      ['4 compact!', amount(40000, 'compact!')],
      ['4 tight', amount(40000, 'tight')],
      ['4 tight!', amount(40000, 'tight!')],
      ['4 scatter', amount(40000, 'scatter')],
      ['0.5', amount(5000, 'compact')],
      ['1.2345 tight', amount(12345, 'tight')],
      ['  2   scatter', amount(20000, 'scatter')],
      ['2compact', amount(20000, 'compact')],
      ['5_000', amount(50_000_000, 'compact')],
      ['3 ', amount(30000, 'compact')],
      ['all', { kind: 'all' }],
    ];
    for (const [text, expected] of cases) {
      assert.deepEqual(parseAllocRequest(text), expected, text);
    }
  });

  void it('rejects invalid allocation requests', () => {
    const cases: [string, RegExp][] = [
      ['4 foo', /Invalid resource request '4 foo': unknown allocation policy 'foo'/],
      ['4 compactx', /unknown allocation policy 'compactx'/],
      ['4 Compact', /unknown allocation policy 'Compact'/],
      ['-1', /amounts cannot be negative/],
      ['1.23456', /Resource precision exceeded/],
      ['0', /Zero resources cannot be requested/],
      ['0.0 scatter', /Zero resources cannot be requested/],
      ['', /unexpected end of input, expected an amount or `all`/],
      ['x', /unexpected `x` at position 0, expected an amount or `all`/],
      ['all ', /unexpected `a` at position 0/],
      ['allx', /unexpected `a` at position 0/],
      ['4 compact ', /unexpected ` ` at position 9, expected end of input/],
      ['1.', /unexpected `\.` at position 1/],
    ];
    for (const [text, message] of cases) {
      assertInvalid(() => parseAllocRequest(text), message);
    }
  });

  void it('parses resource requests', () => {
    const cases: [string, string, ResourceAllocRequest][] = [
      ['xxx=all', 'xxx', { kind: 'all' }],
      ['gpus = all', 'gpus', { kind: 'all' }],
      ['ab1c=10', 'ab1c', amount(100000, 'compact')],
      ['a=5_000 compact', 'a', amount(50_000_000, 'compact')],
      ['cpus=351 scatter', 'cpus', amount(3_510_000, 'scatter')],
      ['cpus=11 compact!', 'cpus', amount(110000, 'compact!')],
      ['abc=123 tight!', 'abc', amount(1_230_000, 'tight!')],
      ['a/b=0.25', 'a/b', amount(2500, 'compact')],
      ['gpus=2 scatter', 'gpus', amount(20000, 'scatter')],
    ];
    for (const [text, resource, request] of cases) {
      assert.deepEqual(parseResourceRequest(text), { resource, request }, text);
    }
  });

  void it('rejects invalid resource requests', () => {
    const cases: [string, RegExp][] = [
      ['', /Invalid resource request '': unexpected end of input, expected a resource name/],
      ['=1', /unexpected `=` at position 0, expected a resource name/],
      ['1a=1', /unexpected `1` at position 0, expected a resource name/],
      [' a=1', /unexpected ` ` at position 0, expected a resource name/],
      ['a_b=1', /invalid character `_` in resource name 'a_b'/],
      ['a', /unexpected end of input, expected `=`/],
      ['a=x', /unexpected `x` at position 2, expected an amount or `all`/],
      ['aa=0', /Zero resources cannot be requested/],
      ['gpus=2 fast', /unknown allocation policy 'fast'/],
      ['gpus=-2', /amounts cannot be negative/],
      ['gpus=0.00001', /Resource precision exceeded/],
    ];
    for (const [text, message] of cases) {
      assertInvalid(() => parseResourceRequest(text), message);
    }
  });

  void it('formats requests and their JSON', () => {
    const cases: [ResourceAllocRequest, string, unknown][] = [
      [amount(10000, 'compact'), '1 compact', { Compact: 10000 }],
      [amount(80000, 'compact!'), '8 compact!', { ForceCompact: 80000 }],
      [amount(5000, 'compact'), '0.5 compact', { Compact: 5000 }],
      [amount(20000, 'tight'), '2 tight', { Tight: 20000 }],
      [amount(12345, 'tight!'), '1.2345 tight!', { ForceTight: 12345 }],
      [amount(30000, 'scatter'), '3 scatter', { Scatter: 30000 }],
      [{ kind: 'all' }, 'all', 'All'],
    ];
    for (const [request, text, json] of cases) {
      assert.equal(formatAllocRequest(request), text);
      assert.deepEqual(allocRequestToJson(request), json);
      assert.deepEqual(allocRequestFromJson(json), request);
      assert.deepEqual(parseAllocRequest(text), request);
    }
    for (const bad of [{ Foo: 1 }, 'all', { Compact: 'x' }, null, { Compact: 1, Tight: 2 }]) {
      assertInvalid(() => allocRequestFromJson(bad), /Invalid allocation request JSON/);
    }
  });

  void it('formats resource variants as in job info', () => {
    const cpus1: ResourceRequest = {
      nNodes: 0,
      minTimeMs: 0,
      resources: [{ resource: 'cpus', request: amount(10000, 'compact') }],
      weight: 10000,
    };
    const mixed: ResourceRequest = {
      nNodes: 0,
      minTimeMs: 0,
      resources: [
        { resource: 'gpus', request: { kind: 'all' } },
        { resource: 'cpus', request: amount(5000, 'tight!') },
      ],
      weight: 112000,
    };
    const nodes: ResourceRequest = { nNodes: 3, minTimeMs: 0, resources: [], weight: 10000 };
    const cases: [ResourceRequest[], string][] = [
      [[cpus1], 'cpus: 1 compact'],
      [[mixed], 'cpus: 0.5 tight!\ngpus: all\n[weight: 11.2]'],
      [[nodes], 'nodes: 3'],
      [
        [cpus1, mixed],
        '# Variant 1\ncpus: 1 compact\n\n# Variant 2\ncpus: 0.5 tight!\ngpus: all\n[weight: 11.2]',
      ],
      [[{ ...cpus1, weight: 20000 }], 'cpus: 1 compact\n[weight: 2]'],
    ];
    for (const [variants, expected] of cases) {
      assert.equal(formatResourceVariants(variants), expected);
    }
  });

  void it('validates variants', () => {
    const ok: ResourceRequest = {
      nNodes: 0,
      minTimeMs: 0,
      resources: [{ resource: 'cpus', request: amount(10000, 'compact') }],
      weight: 10000,
    };
    validateResourceVariants([ok]);
    const cases: [ResourceRequest[], string][] = [
      [[], 'Resource are empty'],
      [Array.from({ length: 33 }, () => ok), 'Too many resource variants'],
      [[{ ...ok, resources: [] }], 'Resource request is empty'],
      [
        [{ ...ok, resources: [{ resource: 'x', request: amount(0, 'compact') }] }],
        'Zero resources cannot be requested',
      ],
      [
        [{ ...ok, resources: [...ok.resources, ...ok.resources] }],
        'Request are not sorted or unique',
      ],
      [
        [ok, { ...ok, nNodes: 2, resources: [] }],
        'Resources mixes multi-node and non-multi-node requests',
      ],
    ];
    for (const [variants, message] of cases) {
      assertInvalid(() => validateResourceVariants(variants), message);
    }
  });

  void it('parses weights', () => {
    const cases: [string, number][] = [
      ['1', 10000],
      ['11.2', 112000],
      ['0.5', 5000],
      ['2e1', 200000],
    ];
    for (const [text, expected] of cases) {
      assert.equal(parseResourceWeight(text), expected, text);
    }
    for (const bad of ['0', '-1', 'x', '', ' 1']) {
      assertInvalid(() => parseResourceWeight(bad), /Invalid resource weight/);
    }
  });

  void it('maps names to env var suffixes', () => {
    const cases: [string, string][] = [
      ['cpus', 'cpus'],
      ['gpus/nvidia', 'gpus_nvidia'],
      ['a-b.c d', 'a_b_c_d'],
      ['Mem9', 'Mem9'],
      ['é', '__'],
    ];
    for (const [name, expected] of cases) {
      assert.equal(resourceEnvName(name), expected, name);
    }
  });
});
