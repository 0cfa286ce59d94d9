/**
 * Preload for a clatd under test: `node --import dist/test/helpers/no-tcx.js dist/src/cli/main.js run …`
 * makes this process's kernel look like one before Linux 6.6, which does not know the tcx attach
 * types: bpf(BPF_LINK_CREATE) for BPF_TCX_INGRESS or BPF_TCX_EGRESS fails with EINVAL, as such a
 * kernel answers, so clatd attaches its programs with classic tc filters, the path most installed
 * kernels take. Everything else reaches the kernel untouched. Only the thread that imports it is
 * affected (the offload attaches from the main thread).
 */
import { native } from '../../src/sys/addon.js';
import { Errno } from '../../src/sys/errors.js';

// linux/bpf.h: enum bpf_cmd, enum bpf_attach_type; attach_type is at offset 8 of link_create.
const BPF_LINK_CREATE = 28;
const BPF_TCX_INGRESS = 46;
const BPF_TCX_EGRESS = 47;

const bpf = native.bpf;
native.bpf = (cmd, attr, ptrs) => {
  if (cmd === BPF_LINK_CREATE) {
    const type = new DataView(attr.buffer, attr.byteOffset, attr.byteLength).getUint32(8, true);
    if (type === BPF_TCX_INGRESS || type === BPF_TCX_EGRESS) return -Errno.EINVAL;
  }
  return bpf(cmd, attr, ptrs);
};
