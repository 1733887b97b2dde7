// A tiny protobuf wire codec for the raw protobuf socket tests: varints and
// length-delimited fields (enough for every message of the realtime API;
// zigzag and packed encodings are not needed there).
//
//   decode(buf)          -> { [fieldNumber]: [value, ...] } in wire order;
//                           varint -> BigInt (raw unsigned 64 bits),
//                           length-delimited -> Buffer, fixed64/fixed32 -> Buffer
//   encode(obj, table)   -> Buffer, with a field table { name: [number, type, subTable] }
//   read(buf, table)     -> a named object: only the fields on the wire, unknown
//                           numbers under their number; repeated fields (type
//                           ending in '*') always as arrays
//
// Types: 'string', 'bytes', 'int32', 'int64', 'bool', 'message' (subTable),
// 'map' (string -> string), and any of them with a '*' suffix for repeated.
// Values of int64 fields are BigInt when read; numbers or BigInts when written.

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LEN = 2;
const WIRE_FIXED32 = 5;

export function encodeVarint(value) {
  let v = BigInt.asUintN(64, BigInt(value)); // negatives: ten bytes, two's complement
  const out = [];
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v !== 0n) byte |= 0x80;
    out.push(byte);
  } while (v !== 0n);
  return Buffer.from(out);
}

/** Reads one varint at off; returns [BigInt value, next offset]. Throws when truncated or too long. */
export function decodeVarint(buf, off) {
  let v = 0n;
  for (let i = 0; i < 10; i++) {
    if (off + i >= buf.length) throw new Error(`truncated varint at ${off}`);
    const byte = buf[off + i];
    v |= BigInt(byte & 0x7f) << BigInt(7 * i);
    if ((byte & 0x80) === 0) return [BigInt.asUintN(64, v), off + i + 1];
  }
  throw new Error(`varint longer than 10 bytes at ${off}`);
}

export function tag(number, wire) {
  return encodeVarint((BigInt(number) << 3n) | BigInt(wire));
}

/** A varint field. */
export function varintField(number, value) {
  return Buffer.concat([tag(number, WIRE_VARINT), encodeVarint(value)]);
}

/** A length-delimited field (string, bytes or an encoded message). */
export function lenField(number, payload) {
  const body = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : Buffer.from(payload);
  return Buffer.concat([tag(number, WIRE_LEN), encodeVarint(body.length), body]);
}

/** Decodes a message into { fieldNumber: [values] }. Throws on malformed input. */
export function decode(input) {
  const buf = Buffer.isBuffer(input) ? input : Buffer.from(input);
  const out = {};
  let off = 0;
  while (off < buf.length) {
    let key;
    [key, off] = decodeVarint(buf, off);
    const number = Number(key >> 3n);
    const wire = Number(key & 7n);
    if (number < 1) throw new Error(`field number ${number} at ${off}`);
    let value;
    if (wire === WIRE_VARINT) {
      [value, off] = decodeVarint(buf, off);
    } else if (wire === WIRE_LEN) {
      let len;
      [len, off] = decodeVarint(buf, off);
      if (BigInt(off) + len > BigInt(buf.length)) throw new Error(`length ${len} past the end at ${off}`);
      value = buf.subarray(off, off + Number(len));
      off += Number(len);
    } else if (wire === WIRE_FIXED64 || wire === WIRE_FIXED32) {
      const n = wire === WIRE_FIXED64 ? 8 : 4;
      if (off + n > buf.length) throw new Error(`truncated fixed field at ${off}`);
      value = buf.subarray(off, off + n);
      off += n;
    } else {
      throw new Error(`wire type ${wire} at ${off}`);
    }
    (out[number] ||= []).push(value);
  }
  return out;
}

/** A varint as a signed 32-bit number (int32 fields). */
export function int32(v) {
  return Number(BigInt.asIntN(32, v));
}

/** A varint as a signed 64-bit BigInt (int64 fields). */
export function int64(v) {
  return BigInt.asIntN(64, v);
}

function encodeValue(number, type, value, sub) {
  switch (type) {
    case 'string':
    case 'bytes':
      return lenField(number, value);
    case 'int32':
    case 'int64':
      return varintField(number, value);
    case 'bool':
      return varintField(number, value ? 1 : 0);
    case 'message':
      return lenField(number, encode(value, sub));
    case 'map':
      return Buffer.concat(Object.entries(value).map(([k, v]) => lenField(number, Buffer.concat([lenField(1, k), lenField(2, v)]))));
    default:
      throw new Error(`unknown field type ${type}`);
  }
}

/**
 * Encodes obj with a field table. Every key of obj must be in the table; a
 * value of undefined is left out; every other value is written, zero values
 * included (so a test can send an explicit default on purpose).
 */
export function encode(obj, table = {}) {
  const parts = [];
  for (const [name, value] of Object.entries(obj)) {
    if (value === undefined) continue;
    const spec = table[name];
    if (!spec) throw new Error(`field ${name} is not in the table`);
    const [number, rawType, sub] = spec;
    const repeated = rawType.endsWith('*');
    const type = repeated ? rawType.slice(0, -1) : rawType;
    if (repeated) {
      for (const v of value) parts.push(encodeValue(number, type, v, sub));
    } else {
      parts.push(encodeValue(number, type, value, sub));
    }
  }
  return Buffer.concat(parts);
}

function readValue(type, raw, sub) {
  switch (type) {
    case 'string': return Buffer.from(raw).toString('utf8');
    case 'bytes': return Buffer.from(raw);
    case 'int32': return int32(raw);
    case 'int64': return int64(raw);
    case 'bool': return raw !== 0n;
    case 'message': return read(raw, sub);
    default: throw new Error(`unknown field type ${type}`);
  }
}

/** Decodes buf and names its fields with table (see the top of this file). */
export function read(buf, table = {}) {
  const fields = decode(buf);
  const byNumber = new Map(Object.entries(table).map(([name, spec]) => [spec[0], [name, ...spec.slice(1)]]));
  const out = {};
  for (const [numStr, values] of Object.entries(fields)) {
    const number = Number(numStr);
    const spec = byNumber.get(number);
    if (!spec) {
      out[number] = values;
      continue;
    }
    const [name, rawType, sub] = spec;
    const repeated = rawType.endsWith('*');
    const type = repeated ? rawType.slice(0, -1) : rawType;
    if (type === 'map') {
      out[name] = {};
      for (const entry of values) {
        const e = read(entry, { key: [1, 'string'], value: [2, 'string'] });
        out[name][e.key ?? ''] = e.value ?? '';
      }
    } else if (repeated) {
      out[name] = values.map((v) => readValue(type, v, sub));
    } else {
      // proto3: the last one wins for scalars; messages merge, but no test needs that.
      out[name] = readValue(type, values[values.length - 1], sub);
    }
  }
  return out;
}

// ------------------------------------------------------------- realtime tables
// The field numbers of nakama.realtime (proto/kizuna/realtime.proto) that the
// raw tests use. Wrappers and Timestamps are messages of their own.

export const BoolValue = { value: [1, 'bool'] };
export const Int32Value = { value: [1, 'int32'] };
export const StringValue = { value: [1, 'string'] };
export const Timestamp = { seconds: [1, 'int64'], nanos: [2, 'int32'] };

export const UserPresence = {
  user_id: [1, 'string'], session_id: [2, 'string'], username: [3, 'string'],
  persistence: [4, 'bool'], status: [5, 'message', StringValue],
};
export const Channel = {
  id: [1, 'string'], presences: [2, 'message*', UserPresence], self: [3, 'message', UserPresence],
  room_name: [4, 'string'], group_id: [5, 'string'], user_id_one: [6, 'string'], user_id_two: [7, 'string'],
};
export const ChannelJoin = {
  target: [1, 'string'], type: [2, 'int32'], persistence: [3, 'message', BoolValue], hidden: [4, 'message', BoolValue],
};
export const ChannelMessage = {
  channel_id: [1, 'string'], message_id: [2, 'string'], code: [3, 'message', Int32Value],
  sender_id: [4, 'string'], username: [5, 'string'], content: [6, 'string'],
  create_time: [7, 'message', Timestamp], update_time: [8, 'message', Timestamp],
  persistent: [9, 'message', BoolValue], room_name: [10, 'string'], group_id: [11, 'string'],
  user_id_one: [12, 'string'], user_id_two: [13, 'string'],
};
export const ChannelMessageAck = {
  channel_id: [1, 'string'], message_id: [2, 'string'], code: [3, 'message', Int32Value],
  username: [4, 'string'], create_time: [5, 'message', Timestamp], update_time: [6, 'message', Timestamp],
  persistent: [7, 'message', BoolValue], room_name: [8, 'string'], group_id: [9, 'string'],
  user_id_one: [10, 'string'], user_id_two: [11, 'string'],
};
export const ChannelMessageSend = { channel_id: [1, 'string'], content: [2, 'string'] };
export const ChannelLeave = { channel_id: [1, 'string'] };
export const RtError = { code: [1, 'int32'], message: [2, 'string'], context: [3, 'map'] };
export const Match = {
  match_id: [1, 'string'], authoritative: [2, 'bool'], label: [3, 'message', StringValue], size: [4, 'int32'],
  presences: [5, 'message*', UserPresence], self: [6, 'message', UserPresence],
};
export const MatchCreate = { name: [1, 'string'] };
export const MatchData = {
  match_id: [1, 'string'], presence: [2, 'message', UserPresence], op_code: [3, 'int64'],
  data: [4, 'bytes'], reliable: [5, 'bool'],
};
export const MatchDataSend = {
  match_id: [1, 'string'], op_code: [2, 'int64'], data: [3, 'bytes'],
  presences: [4, 'message*', UserPresence], reliable: [5, 'bool'],
};
export const MatchJoin = { match_id: [1, 'string'], token: [2, 'string'], metadata: [3, 'map'] };
export const MatchLeave = { match_id: [1, 'string'] };
export const MatchPresenceEvent = {
  match_id: [1, 'string'], joins: [2, 'message*', UserPresence], leaves: [3, 'message*', UserPresence],
};
export const Party = {
  party_id: [1, 'string'], open: [2, 'bool'], hidden: [3, 'bool'], max_size: [4, 'int32'],
  self: [5, 'message', UserPresence], leader: [6, 'message', UserPresence],
  presences: [7, 'message*', UserPresence], label: [8, 'string'],
};
export const PartyCreate = { open: [1, 'bool'], max_size: [2, 'int32'], label: [3, 'string'], hidden: [4, 'bool'] };
export const Empty = {};

// Every kind of the Envelope's oneof, by field number (Appendix B).
export const KINDS = {
  channel: 2, channel_join: 3, channel_leave: 4, channel_message: 5, channel_message_ack: 6,
  channel_message_send: 7, channel_message_update: 8, channel_message_remove: 9, channel_presence_event: 10,
  error: 11, match: 12, match_create: 13, match_data: 14, match_data_send: 15, match_join: 16,
  match_leave: 17, match_presence_event: 18, matchmaker_add: 19, matchmaker_matched: 20,
  matchmaker_remove: 21, matchmaker_ticket: 22, notifications: 23, rpc: 24, status: 25,
  status_follow: 26, status_presence_event: 27, status_unfollow: 28, status_update: 29,
  stream_data: 30, stream_presence_event: 31, ping: 32, pong: 33, party: 34, party_create: 35,
  party_join: 36, party_leave: 37, party_promote: 38, party_leader: 39, party_accept: 40,
  party_remove: 41, party_close: 42, party_join_request_list: 43, party_join_request: 44,
  party_matchmaker_add: 45, party_matchmaker_remove: 46, party_matchmaker_ticket: 47,
  party_data: 48, party_data_send: 49, party_presence_event: 50, party_update: 51,
};

// Kinds with a table above are read field by field; the others with their
// fields under their numbers.
const TABLES = {
  channel: Channel, channel_join: ChannelJoin, channel_leave: ChannelLeave,
  channel_message: ChannelMessage, channel_message_ack: ChannelMessageAck,
  channel_message_send: ChannelMessageSend, error: RtError, match: Match, match_create: MatchCreate,
  match_data: MatchData, match_data_send: MatchDataSend, match_join: MatchJoin, match_leave: MatchLeave,
  match_presence_event: MatchPresenceEvent, party: Party, party_create: PartyCreate,
};

export const Envelope = {
  cid: [1, 'string'],
  ...Object.fromEntries(Object.entries(KINDS).map(([name, n]) => [name, [n, 'message', TABLES[name] || Empty]])),
};

/** Encodes an Envelope, e.g. envelope({ cid: '1', ping: {} }). */
export function envelope(obj) {
  return encode(obj, Envelope);
}

/** Decodes an Envelope with the table above. */
export function readEnvelope(buf) {
  return read(buf, Envelope);
}
