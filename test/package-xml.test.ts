// What a RETRIEVE of a package.xml asks Salesforce for (typesFromPackageXml in src/workers/operations/retrieve.ts):
// the <types> of the manifest as Salesforce reads it, an XML document.
import { describe, expect, it } from 'vitest';
import { typesFromPackageXml } from '../src/workers/operations/retrieve.js';

describe('typesFromPackageXml', () => {
  it('reads names and members, trimmed', () => {
    const xml = `<?xml version="1.0" encoding="UTF-8"?>
<Package xmlns="http://soap.sforce.com/2006/04/metadata">
  <types>
    <members> AccountService </members>
    <members>AccountServiceTest</members>
    <name>ApexClass</name>
  </types>
  <types><members>*</members><name>CustomObject</name></types>
  <version>62.0</version>
</Package>`;
    expect(typesFromPackageXml(xml)).toEqual([
      { name: 'ApexClass', members: ['AccountService', 'AccountServiceTest'] },
      { name: 'CustomObject', members: ['*'] },
    ]);
  });

  it('leaves out what is commented out: members, and whole types', () => {
    const xml = `<Package>
  <types>
    <members>Kept</members>
    <!-- <members>LegacyBatch</members> -->
    <name>ApexClass</name>
  </types>
  <!--
  <types><members>*</members><name>Profile</name></types>
  -->
</Package>`;
    expect(typesFromPackageXml(xml)).toEqual([{ name: 'ApexClass', members: ['Kept'] }]);
  });

  it('decodes entities, character references and CDATA', () => {
    const xml = `<Package><types><members>R&amp;D Dashboards</members><members>Caf&#233; &#x26; Bar</members><members><![CDATA[Q&A <Support>]]></members><name>DashboardFolder</name></types></Package>`;
    expect(typesFromPackageXml(xml)).toEqual([{ name: 'DashboardFolder', members: ['R&D Dashboards', 'Café & Bar', 'Q&A <Support>'] }]);
  });

  it('refuses a character reference to a character XML does not allow: INVALID_PACKAGE', () => {
    for (const reference of ['&#0;', '&#x110000;', '&#xD800;', '&#99999999999;']) {
      const xml = `<Package><types><members>A${reference}</members><name>ApexClass</name></types></Package>`;
      expect(() => typesFromPackageXml(xml), reference).toThrow(expect.objectContaining({ code: 'INVALID_PACKAGE' }));
    }
  });

  it('refuses a manifest without a usable type: INVALID_PACKAGE', () => {
    for (const xml of ['<Package/>', '<Package><!-- <types><members>A</members><name>ApexClass</name></types> --></Package>', '<Package><types><members></members><name>ApexClass</name></types></Package>']) {
      expect(() => typesFromPackageXml(xml), xml).toThrow(expect.objectContaining({ code: 'INVALID_PACKAGE' }));
    }
  });
});
