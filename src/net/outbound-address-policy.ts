// Which addresses a request to a URL that a user gave (a notification subscriber's) may reach.
//
// Such a URL must not turn Switchyard into a way into the networks it runs in: the cloud's metadata service
// (169.254.169.254), Vault, Redis or Postgres on the compose network, anything on localhost. So the special-purpose
// ranges of the IANA registries (RFC 6890 and its updates: loopback, private, link-local, shared, multicast, ...)
// are refused unless the operator allows some of them. The check runs on the addresses a name resolves to, in
// the request's own DNS lookup, so a name cannot pass a check and then resolve elsewhere (DNS rebinding).
import { lookup as dnsLookup } from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { addressType } from './address-ranges.js';
import { SharedLookups, type ResolveAll } from './shared-lookups.js';

/**
 * Every range refused unless allowed, with what it is, as [first address, prefix length, what]: the IANA
 * special-purpose registries, and the deprecated IPv6 forms that carry an IPv4 address (which a host may route
 * to that IPv4 address). The first range that holds an address names it.
 */
const specialPurpose = (
  [
    ['0.0.0.0', 8, 'a "this network" address'],
    ['10.0.0.0', 8, 'a private address'],
    ['100.64.0.0', 10, 'a shared (carrier-grade NAT) address'],
    ['127.0.0.0', 8, 'a loopback address'],
    ['169.254.0.0', 16, 'a link-local address'],
    ['172.16.0.0', 12, 'a private address'],
    ['192.0.0.0', 24, 'an IETF protocol address'],
    ['192.0.2.0', 24, 'a documentation address'],
    ['192.88.99.0', 24, 'a 6to4 relay address'],
    ['192.168.0.0', 16, 'a private address'],
    ['198.18.0.0', 15, 'a benchmarking address'],
    ['198.51.100.0', 24, 'a documentation address'],
    ['203.0.113.0', 24, 'a documentation address'],
    ['224.0.0.0', 4, 'a multicast address'],
    ['240.0.0.0', 4, 'a reserved address'],
    ['::', 128, 'the unspecified address'],
    ['::1', 128, 'a loopback address'],
    ['::', 96, 'an IPv4-compatible address'],
    ['::ffff:0:0:0', 96, 'an IPv4-translated address'],
    ['100::', 64, 'a discard-only address'],
    ['2001::', 23, 'an IETF protocol address (Teredo among them)'],
    ['2001:db8::', 32, 'a documentation address'],
    ['2002::', 16, 'a 6to4 address'],
    ['fc00::', 7, 'a unique local address'],
    ['fe80::', 10, 'a link-local address'],
    ['fec0::', 10, 'a site-local address'],
    ['ff00::', 8, 'a multicast address'],
  ] as const
).map(([first, bits, what]) => {
  const range = new BlockList();
  range.addSubnet(first, bits, addressType(first));
  return { range, what };
});

/**
 * NAT64 prefixes, well-known (RFC 6052) and for local use (RFC 8215): a translator sends what goes to them to
 * the IPv4 address in their last 32 bits, so that address is the one checked.
 */
const nat64 = new BlockList();
nat64.addSubnet('64:ff9b::', 96, 'ipv6');
nat64.addSubnet('64:ff9b:1::', 48, 'ipv6');

/** Which special-purpose range an address is in, if any. */
function specialRange(address: string): string | null {
  const type = addressType(address);
  // BlockList matches IPv4-mapped IPv6 addresses (::ffff:127.0.0.1) against IPv4 ranges by itself.
  const special = specialPurpose.find(({ range }) => range.check(address, type));
  if (special) return special.what;
  return type === 'ipv6' && nat64.check(address, 'ipv6') ? specialRange(lastIpv4(address)) : null;
}

/** The IPv4 address in an IPv6 address's last 32 bits. */
function lastIpv4(address: string): string {
  if (address.includes('.')) return address.slice(address.lastIndexOf(':') + 1);
  const groups = (text: string) => (text ? text.split(':').map((group) => parseInt(group, 16)) : []);
  // After a "::" come the last groups; the zeros it stands for come before them.
  const [head = '', tail] = address.split('::');
  const [high = 0, low = 0] = [0, 0, ...groups(tail ?? head)].slice(-2);
  return [high >> 8, high & 0xff, low >> 8, low & 0xff].join('.');
}

/** The URL's host, an IPv6 address without its brackets. */
function hostOf(url: URL): string {
  return url.hostname.replace(/^\[(.*)\]$/, '$1');
}

/** A host name that always means this machine (RFC 6761), whatever DNS says. */
function isLocalhostName(host: string): boolean {
  const name = host.toLowerCase().replace(/\.$/, '');
  return name === 'localhost' || name.endsWith('.localhost');
}

export type { ResolveAll } from './shared-lookups.js';

export class OutboundAddressPolicy {
  /** The lookups of deliveries, a few at a time (shared-lookups.ts). */
  private readonly lookups: SharedLookups;

  constructor(
    /** Special-purpose addresses that may be reached all the same (an operator's internal receivers). */
    private readonly allowed: BlockList = new BlockList(),
    /** How names are resolved: the system's resolver (tests give answers of their own). */
    resolveAll: ResolveAll = dnsLookup,
  ) {
    this.lookups = new SharedLookups(resolveAll);
  }

  /** Why `address` (an IP address) may not be reached ("127.0.0.1 is a loopback address"), or null when it may. */
  refusal(address: string): string | null {
    const what = this.refusedRange(address);
    return what && `${address} is ${what}`;
  }

  /** The special-purpose range that keeps an address from being reached, if one does. */
  private refusedRange(address: string): string | null {
    const what = specialRange(address);
    return what && !this.allowed.check(address, addressType(address)) ? what : null;
  }

  /**
   * Why the URL's host may not be reached, when its host is an address (which a request does not look up, so
   * its lookup cannot check it); null otherwise.
   */
  addressRefusal(url: URL): string | null {
    const host = hostOf(url);
    return isIP(host) !== 0 ? this.refusal(host) : null;
  }

  /**
   * Why the URL's host may not be reached, as far as that is known without DNS: an address, or localhost (for
   * checking a URL when it is given). A request checks the addresses a name resolves to (lookup).
   */
  urlRefusal(url: URL): string | null {
    const host = hostOf(url);
    if (isLocalhostName(host)) return this.refusedRange('127.0.0.1') && `${host} is a loopback address`;
    return this.addressRefusal(url);
  }

  /**
   * dns.lookup for http.request and net.connect that fails with a RefusedAddressError when the name resolves
   * to an address that may not be reached (any one of them: the socket may try each in turn). The error names
   * the range, not the address: whoever reads it (a subscriber's attempts) learns nothing of internal DNS.
   */
  readonly lookup: LookupFunction = (hostname, options, callback) => {
    this.lookups.resolve(hostname, options, (error, addresses) => {
      if (error) return callback(error, '', 0);
      for (const { address } of addresses) {
        const what = this.refusedRange(address);
        if (what) return callback(new RefusedAddressError(`${hostname} resolves to ${what}`), '', 0);
      }
      if (options.all) return callback(null, addresses);
      const [first] = addresses;
      if (!first) return callback(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND', hostname }), '', 0);
      callback(null, first.address, first.family);
    });
  };
}

/** A request was not made because its destination is an address that may not be reached. */
export class RefusedAddressError extends Error {
  override readonly name = 'RefusedAddressError';
}
