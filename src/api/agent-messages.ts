// Validation of what agents send. An agent is trusted with its own device only, so every message
// is checked against the protocol before anything reads it; a bad one closes the connection with
// DROVER_AGENT_PROTOCOL and changes nothing.
import { Type, type Static } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import type { AgentMessage } from '../agent/protocol.js';

const Num = Type.Number();
const Metrics = Type.Object(
  {
    cpu: Type.Array(Type.Number({ minimum: 0, maximum: 1 }), { maxItems: 256 }),
    load: Type.Tuple([Num, Num, Num]),
    mem: Type.Tuple([Num, Num]),
    disk: Type.Tuple([Num, Num]),
    temp: Type.Optional(Type.Number({ minimum: -100, maximum: 200 })),
    throttled: Type.Optional(Type.Integer({ minimum: 0 })),
    net: Type.Tuple([Num, Num]),
    uptime: Type.Number({ minimum: 0 }),
  },
  { additionalProperties: false },
);
const Sample = { seq: Type.Integer({ minimum: 1, maximum: 2 ** 31 - 1 }), ts: Type.Integer({ minimum: 0 }), m: Metrics };
const Id = Type.String({ minLength: 1, maxLength: 100 });

const Message = Type.Union([
  Type.Object(
    {
      t: Type.Literal('hello'),
      v: Type.Integer(),
      node: Id,
      bootId: Type.String({ maxLength: 64 }),
      imageId: Type.Union([Id, Type.Null()]),
      version: Type.String({ maxLength: 40 }),
      stream: Type.String({ minLength: 1, maxLength: 64 }),
      gossip: Type.Optional(Type.Object({ addr: Type.String({ maxLength: 64 }), port: Type.Integer({ minimum: 1, maximum: 65535 }) }, { additionalProperties: false })),
    },
    { additionalProperties: false },
  ),
  Type.Object({ t: Type.Literal('hb'), ...Sample }, { additionalProperties: false }),
  Type.Object({ t: Type.Literal('batch'), items: Type.Array(Type.Object(Sample, { additionalProperties: false }), { maxItems: 1000 }) }, { additionalProperties: false }),
  Type.Object({ t: Type.Literal('job-started'), job: Id }, { additionalProperties: false }),
  Type.Object({ t: Type.Literal('job-output'), job: Id, stream: Type.Union([Type.Literal('stdout'), Type.Literal('stderr')]), data: Type.String({ maxLength: 256 * 1024 }) }, { additionalProperties: false }),
  Type.Object(
    {
      t: Type.Literal('job-result'),
      job: Id,
      ok: Type.Boolean(),
      exitCode: Type.Optional(Type.Union([Type.Integer(), Type.Null()])),
      error: Type.Optional(Type.String({ maxLength: 4096 })),
      output: Type.Optional(Type.String({ maxLength: 128 * 1024 })),
      durationMs: Type.Number({ minimum: 0 }),
    },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      t: Type.Literal('view'),
      members: Type.Array(
        Type.Object(
          {
            node: Id,
            state: Type.Union([Type.Literal('alive'), Type.Literal('suspect'), Type.Literal('dead'), Type.Literal('left')]),
            incarnation: Type.Integer({ minimum: 0 }),
            phi: Type.Optional(Type.Number()),
          },
          { additionalProperties: false },
        ),
        { maxItems: 20_000 },
      ),
    },
    { additionalProperties: false },
  ),
]);

const check = TypeCompiler.Compile(Message);

// The TypeBox shape and the protocol's hand-written union must agree; this line fails to compile if they drift.
const _agree: Static<typeof Message> extends AgentMessage ? true : never = true;
void _agree;

/** Parses one text frame; null when it is not a valid agent message. */
export function parseAgentMessage(text: string): AgentMessage | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  return check.Check(value) ? (value as AgentMessage) : null;
}
