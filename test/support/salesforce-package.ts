// A small Metadata API package for deploy tests: package.xml listing the Apex classes, and each class with
// its -meta.xml, zipped as Salesforce tooling does.
import { buildZip } from '../fixtures/salesforce-sim.js';

/** A zipped package of empty Apex classes (`public class Foo {}`), API version 62.0. */
export function samplePackage(classes: string[] = ['Foo']): Buffer {
  return buildZip({
    'package.xml':
      '<?xml version="1.0" encoding="UTF-8"?><Package xmlns="http://soap.sforce.com/2006/04/metadata"><types>' +
      classes.map((c) => `<members>${c}</members>`).join('') +
      '<name>ApexClass</name></types><version>62.0</version></Package>',
    ...Object.fromEntries(
      classes.flatMap((c) => [
        [`classes/${c}.cls`, `public class ${c} {}`],
        [`classes/${c}.cls-meta.xml`, '<ApexClass><apiVersion>62.0</apiVersion><status>Active</status></ApexClass>'],
      ]),
    ),
  });
}
