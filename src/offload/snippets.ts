/**
 * Pieces both offload programs use: the roles of the registers that survive helper calls, values
 * in the byte order a program sees them in memory, one's-complement folding, the counters,
 * RFC 6052 §3.1's non-global IPv4 ranges, martian IPv4 addresses, and the programs' common start,
 * ends and program-wide labels.
 */
import { MAP_LOOKUP_ELEM, SKB_GSO_SEGS, SKB_LEN, SKB_LOAD_BYTES, SKB_PROTOCOL, TC_ACT_SHOT, TCX_NEXT } from './abi.js';
import { type Asm, FP, type Label, R0, R1, R2, R3, R4, R6, R7, R8, R9, type Reg } from './asm.js';

// Register roles. r6–r9 survive helper calls, so they hold what a program keeps; r0–r5 are the
// helper calls' result and arguments, and r2/r3 the scratch between calls.

/** The skb (the program's context), from loadHead to the end. */
export const SKB = R6;
/** skb->len, from loadHead until the ICMP checksum difference takes its place. */
export const PKT_LEN = R7;
/** For an echo: the pseudo-header's checksum difference that rewrite() hands to bpf_l4_csum_replace. */
export const ICMP_DIFF = R7;
/** The input's IP length field (IPv4 Total Length, IPv6 Payload Length), host order. */
export const IP_LEN = R8;
/** The input's transport protocol (IPv4 Protocol, IPv6 Next Header), once loaded. */
export const L4_PROTO = R9;

// Program-wide labels: the ends every program has (placed by `ends`, and by the program for OUT),
// which snippets jump to. A snippet's own labels are in a scope of its own (Asm.scope).
/** Hands the packet on unchanged. */
export const PASS = 'pass';
/** Drops and counts a packet a helper failed on after it was changed. */
export const FAILED = 'failed';
/** Where a translated packet leaves: the program places it after its rewrite. */
export const OUT = 'out';

/**
 * The stack word the counters' map key is written to (4 bytes, just under the frame pointer): the
 * programs' own stack slots lie below it.
 */
export const COUNTER_KEY = -4;

/**
 * The 32-bit word a program loads from bytes `b[at..at+4)` (little-endian host), as an
 * immediate: comparing loaded words with it needs no byte swap.
 */
export function memWord(b: Uint8Array, at: number): number {
  return b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24) | 0;
}

/** A 16-bit value in network order as the program loads it from memory. */
export function memHalf(v: number): number {
  return ((v & 0xff) << 8) | ((v >>> 8) & 0xff);
}

/** Folds the 32-bit one's-complement sum in `r` to 16 bits (twice, for the carry), using `tmp`. */
export function fold(a: Asm, r: Reg, tmp: Reg): void {
  a.alu('lsh', r, 32).alu('rsh', r, 32);
  for (let i = 0; i < 2; i++) {
    a.movReg(tmp, r).alu('rsh', tmp, 16).alu('and', r, 0xffff).aluReg('add', r, tmp);
  }
}

/**
 * Counter slots of the offload's map: 16 bytes each, packets then input bytes. A GSO packet counts
 * as its segments, and its bytes as the skb's (the segments' repeated headers are not in it).
 */
export const COUNTER_64 = 0;
export const COUNTER_46 = 1;
/** Packets dropped because a helper failed after the packet was already changed. */
export const COUNTER_64_FAILED = 2;
export const COUNTER_46_FAILED = 3;
export const COUNTER_SLOTS = 4;
export const COUNTER_VALUE_LEN = 16;

/**
 * Adds `packetsReg` packets of `lenReg` bytes in all to counter `slot` (clobbers r0–r5; both
 * registers must be r6–r9).
 */
function count(a: Asm, mapFd: number, slot: number, packetsReg: Reg, lenReg: Reg): void {
  const l = a.scope('count');
  a.storeImm('w', FP, COUNTER_KEY, slot)
    .loadMap(R1, mapFd)
    .movReg(R2, FP)
    .alu('add', R2, COUNTER_KEY)
    .call(MAP_LOOKUP_ELEM)
    .jmp('eq', R0, 0, l('skip'))
    .atomicAdd64(R0, 0, packetsReg)
    .atomicAdd64(R0, 8, lenReg)
    .label(l('skip'));
}

/** [address, prefix length] of every range isNonGlobal4 (core/xlat/mapping.ts) names. */
const NON_GLOBAL: readonly [number, number][] = [
  [0x00000000, 8],
  [0x0a000000, 8],
  [0x64400000, 10],
  [0x7f000000, 8],
  [0xa9fe0000, 16],
  [0xac100000, 12],
  [0xc0000000, 24],
  [0xc0000200, 24],
  [0xc0a80000, 16],
  [0xc6120000, 15],
  [0xc6336400, 24],
  [0xcb007100, 24],
  [0xe0000000, 3],
];

/** Jumps to `label` when the IPv4 address in `r` (host order, low 32 bits) is not global; uses `tmp`. */
export function jumpIfNonGlobal(a: Asm, r: Reg, tmp: Reg, label: Label): void {
  for (const [addr, len] of NON_GLOBAL) {
    const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) | 0;
    a.movReg(tmp, r)
      .alu32('and', tmp, mask)
      .jmp32('eq', tmp, addr | 0, label);
  }
}

/**
 * Jumps to `label` when the IPv4 address on the stack at `at` is martian (plan.ts isMartian4:
 * 0.0.0.0/8, 127.0.0.0/8, 224.0.0.0/4, 240.0.0.0/4), which the core drops in both directions.
 * Its first byte (the first octet) tells; uses r2.
 */
export function jumpIfMartian(a: Asm, at: number, label: Label): void {
  a.load('b', R2, FP, at).jmp('eq', R2, 0, label).jmp('eq', R2, 127, label).jmp('ge', R2, 224, label);
}

/**
 * Puts into `r` how many packets the skb is on the wire: its GSO segment count, or 1 (an skb
 * that is not GSO has 0 there).
 */
function wirePackets(a: Asm, r: Reg, skb: Reg): void {
  const l = a.scope('wirePackets');
  a.load('w', r, skb, SKB_GSO_SEGS).jmp('ne', r, 0, l('done')).mov(r, 1).label(l('done'));
}

/**
 * The start both programs share: an skb of protocol `proto` (else PASS), long enough, whose first
 * `len` bytes after the link header are copied to the stack at `at`. Sets SKB and PKT_LEN.
 */
export function loadHead(a: Asm, o: { proto: number; l2: number; at: number; len: number }): void {
  a.movReg(SKB, R1)
    .load('w', R2, SKB, SKB_PROTOCOL)
    .jmp32('ne', R2, o.proto, PASS)
    .load('w', PKT_LEN, SKB, SKB_LEN)
    .jmp('lt', PKT_LEN, o.l2 + o.len, PASS)
    .movReg(R1, SKB)
    .mov(R2, o.l2)
    .movReg(R3, FP)
    .alu('add', R3, o.at)
    .mov(R4, o.len)
    .call(SKB_LOAD_BYTES)
    .jmp('ne', R0, 0, PASS);
}

/**
 * Counts the skb into `slot`: its wire packets, and its length less `minus` as bytes. Counting is
 * the last thing a program does, so it takes the registers of PKT_LEN and IP_LEN for the two.
 */
export function countSkb(a: Asm, mapFd: number, slot: number, minus: number): void {
  const bytes = PKT_LEN;
  const packets = IP_LEN;
  a.load('w', bytes, SKB, SKB_LEN).alu('sub', bytes, minus);
  wirePackets(a, packets, SKB);
  count(a, mapFd, slot, packets, bytes);
}

/** The ends both programs share: FAILED (counted into `failedSlot`, dropped) and PASS (handed on). */
export function ends(a: Asm, mapFd: number, failedSlot: number, minus: number): void {
  a.label(FAILED);
  countSkb(a, mapFd, failedSlot, minus);
  a.mov(R0, TC_ACT_SHOT).exit();
  a.label(PASS).mov(R0, TCX_NEXT).exit();
}

/**
 * The transport check both programs share, with the protocol in L4_PROTO and the transport length in
 * `l4len` (not r2, which it uses): TCP of at least 20 bytes, UDP of at least 8 with a checksum, or
 * an echo request/reply with code 0 of at least 8 (types `echo`, ICMP protocol `icmp`). The
 * transport header's first 8 bytes are on the stack at `l4At`. Goes on after itself; anything else
 * jumps to PASS.
 */
export function checkTransport(
  a: Asm,
  o: { l4len: Reg; l4At: number; icmp: number; echo: readonly [number, number] },
): void {
  const l = a.scope('checkTransport');
  a.jmp('eq', L4_PROTO, 6, l('tcp'))
    .jmp('eq', L4_PROTO, 17, l('udp'))
    .jmp('eq', L4_PROTO, o.icmp, l('icmp'))
    .goto(PASS)
    .label(l('tcp'))
    .jmp('lt', o.l4len, 20, PASS)
    .goto(l('sized'))
    .label(l('udp'))
    .jmp('lt', o.l4len, 8, PASS)
    .load('h', R2, FP, o.l4At + 6)
    .jmp('eq', R2, 0, PASS)
    .goto(l('sized'))
    .label(l('icmp'))
    .jmp('lt', o.l4len, 8, PASS)
    .load('b', R2, FP, o.l4At + 1)
    .jmp('ne', R2, 0, PASS)
    .load('b', R2, FP, o.l4At)
    .jmp('eq', R2, o.echo[0], l('sized'))
    .jmp('eq', R2, o.echo[1], l('sized'))
    .goto(PASS)
    .label(l('sized'));
}
