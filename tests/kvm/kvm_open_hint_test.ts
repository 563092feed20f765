/**
 * The hint of a refused open of a KVM device names who may open it: a node in the kvm group says
 * to join it; a root:root 0600 node says the group will not help (run as root, or give it a group).
 * The node's owner and mode are read with O_PATH + fstat (no permission on the node needed).
 */

import { deepStrictEqual as eq, ok } from "node:assert/strict";
import { kvmOpenHint } from "../../kvm/hints.ts";
import { nodeOwner } from "../../kvm/device_node.ts";

Deno.test("kvmOpenHint EACCES: root:root 0600 → run as root or give it a kvm group; group kvm → join it", () => {
  const rootOnly = kvmOpenHint("EACCES", "/dev/kvm", { uid: 0, gid: 0, mode: 0o600, user: "root", group: "root" });
  eq(
    rootOnly,
    "no permission on /dev/kvm: the device is owned by root:root mode 0600 here: run as root, or give it a kvm " +
      "group (udev rule)",
  );
  const grouped = kvmOpenHint("EACCES", "/dev/kvm", { uid: 0, gid: 993, mode: 0o660, user: "root", group: "kvm" });
  ok(grouped?.startsWith("no permission on /dev/kvm (root:kvm mode 0660): add yourself to its group kvm"), grouped);
  ok(grouped?.includes("usermod -aG kvm $USER"), grouped);
  // Unknown owner (the node cannot be looked at): the general advice.
  ok(kvmOpenHint("EACCES", "/srv/kvm0")?.includes("usermod -aG kvm"));
});

Deno.test("nodeOwner: owner, group and mode of a node without opening it for I/O; undefined when missing", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const f = `${dir}/node`;
    Deno.writeFileSync(f, new Uint8Array());
    Deno.chmodSync(f, 0o600);
    const o = nodeOwner(f);
    eq(o?.mode, 0o600);
    eq(typeof o?.uid, "number");
    ok(o?.user, "a user name or number");
    eq(nodeOwner(`${dir}/missing`), undefined);
    const dev = nodeOwner("/dev/null");
    eq(dev?.mode, 0o666);
    eq([dev?.user, dev?.group], ["root", "root"]);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
