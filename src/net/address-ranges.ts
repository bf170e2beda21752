// IP addresses and CIDR ranges as configuration lists them: "127.0.0.1", "172.16.0.0/12", "::1", "fd00::/8".
// env.ts checks every entry (a typo must fail start-up, not silently drop out of the list); the lists
// become node:net BlockLists, which also match IPv4-mapped IPv6 addresses (::ffff:10.0.0.1) to IPv4 ranges.
import { BlockList, isIP } from 'node:net';

/**
 * Whether `entry` is an IP address, or a CIDR range with a prefix length that fits its family. Not with an
 * IPv6 zone (fe80::1%eth0): isIP takes one, but a BlockList would never match it.
 */
export function isAddressRange(entry: string): boolean {
  const [address = '', bits, ...more] = entry.split('/');
  const family = isIP(address);
  if (family === 0 || more.length > 0 || address.includes('%')) return false;
  return bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= (family === 6 ? 128 : 32));
}

/** The entries (each one passing isAddressRange) as a BlockList. */
export function addressRanges(entries: readonly string[]): BlockList {
  const list = new BlockList();
  for (const entry of entries) {
    if (!isAddressRange(entry)) throw new Error(`not an IP address or CIDR range: ${entry}`);
    const [address, bits] = entry.split('/') as [string, string | undefined];
    const type = addressType(address);
    if (bits === undefined) list.addAddress(address, type);
    else list.addSubnet(address, Number(bits), type);
  }
  return list;
}

/** BlockList's name for an address's family. */
export function addressType(address: string): 'ipv4' | 'ipv6' {
  return isIP(address) === 6 ? 'ipv6' : 'ipv4';
}
