/** Row 1: one trivial ioctl (KVM_CHECK_EXTENSION on /dev/kvm) — the FFI call overhead. @module */

import { CAP, openKvm } from "../../mod.ts";
import { runBaseline, timeBatches } from "../measure.ts";
import { type Row, sideBySide } from "./row.ts";

export const ioctlRow: Row = {
  id: "1",
  name: "trivial ioctl (KVM_CHECK_EXTENSION)",
  unit: "ns",
  target: { kind: "max", value: 1.3 },
  async run(ctx) {
    // One batch a side per round, 48 rounds (~20 s with row 1b), as rows 2 and 3: three runs gave 1.279–1.306
    // with 16 rounds of three batches, 1.282–1.288 with 48 of one (interleaved, 2026-12-07).
    const reps = 1;
    const rounds = ctx.quick ? 2 : 48;
    const per = 200_000;
    using kvm = openKvm();
    const cap = CAP.USER_MEMORY;
    const k = () =>
      timeBatches("kvmsh", reps, per, (n) => {
        for (let i = 0; i < n; i++) if (kvm.checkExtension(cap) !== 1) throw new Error("KVM_CAP_USER_MEMORY != 1");
      });
    const single = await sideBySide(this, rounds, () => runBaseline(ctx.bins.ioctl, reps, per), k);
    // Deno always runs several threads; in a multi-threaded process the kernel takes a file
    // reference per ioctl (fdget), which a single-threaded C program skips. 1b shows that floor.
    const threaded = await sideBySide(
      { ...this, id: "1b", name: "trivial ioctl vs C with an idle 2nd thread", target: undefined },
      rounds,
      () => runBaseline(ctx.bins.ioctl, reps, per, "threaded"),
      k,
      "kernel fdget cost of any multi-threaded process",
    );
    return [single, threaded];
  },
};
