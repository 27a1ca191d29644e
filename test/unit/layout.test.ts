import { describe, expect, it } from 'vitest';
import { resolveLayout } from '../../src/copy/layout.js';

describe('resolveLayout: what --layout does on a destination', () => {
  it('inherit: never copies a layout, says nothing; its attribute is lustre.lov (left out of the xattrs)', () => {
    expect(resolveLayout({ mode: 'inherit' }, Buffer.from('/dev/shm/x'))).toEqual({ layout: { copy: false, name: Buffer.from('lustre.lov') }, note: null });
  });

  it('copy on tmpfs (not Lustre, found by statfs of the nearest existing ancestor): a no-op, said with the path and type', () => {
    const r = resolveLayout({ mode: 'copy' }, Buffer.from('/dev/shm/layout-not-there/deeper/dst'));
    expect(r.layout.copy).toBe(false);
    expect(r.note).toBe("--layout copy: '/dev/shm/layout-not-there/deeper/dst' is not on Lustre (file system type 0x1021994): files and directories get the destination's default layout");
  });

  it('the test attribute stands for the layout on any file system', () => {
    expect(resolveLayout({ mode: 'copy', testXattr: 'user.l' }, Buffer.from('/dev/shm'))).toEqual({ layout: { copy: true, name: Buffer.from('user.l') }, note: null });
    expect(resolveLayout({ mode: 'inherit', testXattr: 'user.l' }, Buffer.from('/dev/shm'))).toEqual({ layout: { copy: false, name: Buffer.from('user.l') }, note: null });
  });
});
