/**
 * A directory only the job's user can write to, in a place other users can write to
 * (a shared scratch file system, /tmp): the rendezvous publishes the job's secret and the
 * ranks' endpoints there, so whoever could write into it could speak for the job.
 *
 * The directory is created with mode 0700; one that already exists is used only if it
 * is a real directory (not a symlink), owned by this process's effective uid and not
 * writable by group or others: otherwise `PrivateDirRefused` names it and the reason.
 * It is then opened once (O_DIRECTORY | O_NOFOLLOW) and every file is reached through
 * that descriptor (`/proc/self/fd/N/name`), so swapping the path for another directory
 * after the check changes nothing. Files are written to a temporary name created
 * O_EXCL | O_NOFOLLOW and renamed into place; a file is read only through an fd opened
 * O_NOFOLLOW whose fstat says: a regular file, owned by us, not readable or writable by
 * group or others. Anything else is refused, not skipped: it can only be there if
 * someone with our uid or root put it there, and a job must not guess which.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, constants as C, fstatSync, lstatSync, mkdirSync, openSync, type Stats } from 'node:fs';
import { promises as fsp } from 'node:fs';
import { FcpError } from '../fcp-error.cjs';

export class PrivateDirRefused extends FcpError {
  constructor(readonly path: string, readonly why: string) {
    super('RENDEZVOUS_REFUSED', `refusing rendezvous directory '${path}': ${why}`);
  }
}

const uid = () => process.geteuid?.() ?? 0;
const octal = (mode: number) => `0${(mode & 0o7777).toString(8)}`;

/** Why a directory's lstat/fstat makes it unfit, or null when it is ours and private. */
function unfit(st: Stats): string | null {
  if (st.isSymbolicLink()) return 'it is a symbolic link';
  if (!st.isDirectory()) return 'it is not a directory';
  if (st.uid !== uid()) return `it is owned by uid ${st.uid}, not by this job's user (uid ${uid()}); remove it or choose another --rendezvous`;
  if (st.mode & 0o022) {
    const who = [st.mode & 0o020 ? 'group' : '', st.mode & 0o002 ? 'others' : ''].filter(Boolean).join(' and ');
    return `it is writable by ${who} (mode ${octal(st.mode)}); remove it or choose another --rendezvous`;
  }
  return null;
}

export class PrivateDir {
  private fd: number | null;

  private constructor(readonly path: string, fd: number) {
    this.fd = fd;
  }

  /** Create `path` (mode 0700) or take the existing one if it is private and ours. */
  static open(path: string): PrivateDir {
    try {
      mkdirSync(path, { mode: 0o700 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    // lstat first: open(O_NOFOLLOW) on a symlink fails with ELOOP, a less clear reason.
    const why = unfit(lstatSync(path));
    if (why) throw new PrivateDirRefused(path, why);
    let fd: number;
    try {
      fd = openSync(path, C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW);
    } catch (err) {
      // Replaced by a symlink or a file since the lstat.
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ELOOP' || code === 'ENOTDIR') throw new PrivateDirRefused(path, code === 'ELOOP' ? 'it is a symbolic link' : 'it is not a directory');
      throw err;
    }
    // What we opened is what counts (the path may have been swapped since the lstat).
    const again = unfit(fstatSync(fd));
    if (again) {
      closeSync(fd);
      throw new PrivateDirRefused(path, again);
    }
    return new PrivateDir(path, fd);
  }

  /** A path that reaches `name` inside the opened directory, whatever its path now names. */
  private at(name: string): string {
    if (name.includes('/') || name === '.' || name === '..' || name === '') throw new Error(`not a plain file name: ${name}`);
    return `${this.self()}/${name}`;
  }

  private self(): string {
    if (this.fd === null) throw new Error(`${this.path} is closed`);
    return `/proc/self/fd/${this.fd}`;
  }

  /** Write `name` atomically: a fresh temporary file (O_EXCL | O_NOFOLLOW, 0600), renamed into place. */
  async write(name: string, data: string | Buffer): Promise<void> {
    const tmp = `.${name}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    const fh = await fsp.open(this.at(tmp), C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, 0o600);
    try {
      try {
        await fh.writeFile(data);
        await fh.chmod(0o600); // whatever the umask did
      } finally {
        await fh.close();
      }
      await fsp.rename(this.at(tmp), this.at(name));
    } catch (err) {
      await fsp.rm(this.at(tmp), { force: true }).catch(() => {});
      throw err;
    }
  }

  /**
   * Read `name`: null when it is not there (yet); PrivateDirRefused when it is there but
   * is not a private regular file of ours.
   */
  async read(name: string): Promise<Buffer | null> {
    let fh;
    try {
      fh = await fsp.open(this.at(name), C.O_RDONLY | C.O_NOFOLLOW | C.O_NONBLOCK);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return null;
      if (code === 'ELOOP') throw new PrivateDirRefused(`${this.path}/${name}`, 'it is a symbolic link');
      throw err;
    }
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw new PrivateDirRefused(`${this.path}/${name}`, 'it is not a regular file');
      if (st.uid !== uid()) throw new PrivateDirRefused(`${this.path}/${name}`, `it is owned by uid ${st.uid}, not by this job's user (uid ${uid()})`);
      if (st.mode & 0o077) throw new PrivateDirRefused(`${this.path}/${name}`, `it is accessible by group or others (mode ${octal(st.mode)})`);
      return await fh.readFile();
    } finally {
      await fh.close();
    }
  }

  async list(): Promise<string[]> {
    return fsp.readdir(this.self());
  }

  async remove(name: string): Promise<void> {
    await fsp.rm(this.at(name), { force: true });
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }

  /**
   * Remove the directory: its files through the descriptor (never following a link),
   * then the directory itself if its path still names the one we opened.
   */
  async removeAll(): Promise<void> {
    if (this.fd === null) return;
    for (const name of await this.list()) await this.remove(name).catch(() => {});
    const mine = fstatSync(this.fd);
    this.close();
    try {
      const st = lstatSync(this.path);
      if (st.isDirectory() && st.ino === mine.ino && st.dev === mine.dev) await fsp.rmdir(this.path);
    } catch {
      // gone already, or not empty (a rank of another job with our key wrote into it)
    }
  }
}
