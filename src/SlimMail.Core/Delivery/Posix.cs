using System.Globalization;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace SlimMail.Delivery;

/// <summary>
/// The few POSIX calls .NET does not expose: fsync of a directory, hard links, unnamed files, ownership.
/// On other systems they degrade to what the platform offers (no directory fsync, copies for links).
/// </summary>
internal static partial class Posix
{
    private const int ORdOnly = 0;
    private const int ORdWr = 2;
    private const int OCloExec = 0x80000;
    private const int OTmpFileFlag = 0x400000; // __O_TMPFILE; O_TMPFILE is it with O_DIRECTORY
    private const int AtFdCwd = -100;
    private const int AtSymlinkFollow = 0x400;
    private const int AtEmptyPath = 0x1000;
    private const int ENoEnt = 2;
    private const int EExist = 17;
    private const int EIntr = 4;
    private const int EIsDir = 21;
    private const int EInval = 22;
    private const int EOpNotSupp = 95;

    // O_DIRECTORY differs between architectures: 0200000 on x86-64, 040000 on arm64 (and arm).
    private static readonly int ODirectory =
        RuntimeInformation.ProcessArchitecture is Architecture.Arm64 or Architecture.Arm ? 0x4000 : 0x10000;

    private static volatile bool _tmpFileUnsupported = !OperatingSystem.IsLinux()
        || RuntimeInformation.ProcessArchitecture is not (Architecture.X64 or Architecture.Arm64);

    private static volatile bool _emptyPathLinkUnsupported;

    public static bool IsLinux { get; } = OperatingSystem.IsLinux();

    /// <summary>Makes a directory's entries (a rename into it) durable.</summary>
    public static void FsyncDirectory(string path)
    {
        using SafeFileHandle? directory = OpenDirectory(path);
        if (directory is not null && Fsync(directory) != 0)
        {
            throw new IOException($"fsync({path}) failed: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    /// <summary>Creates a hard link; false when the platform or the file systems do not allow it.</summary>
    public static bool TryLink(string existing, string newPath)
    {
        if (!IsLinux)
        {
            return false;
        }

        return Link(existing, newPath) == 0;
    }

    /// <summary>
    /// Opens an unnamed file in <paramref name="directory"/> (Linux's O_TMPFILE), readable and writable, with
    /// <paramref name="mode"/> before the umask. It has no name until <see cref="LinkOpenFile"/> gives it one, and
    /// vanishes if the process dies first. Null when the kernel or the file system cannot (callers then write
    /// in a temporary file and rename it).
    /// </summary>
    public static SafeFileHandle? TryOpenUnnamed(string directory, UnixFileMode mode)
    {
        if (_tmpFileUnsupported)
        {
            return null;
        }

        int fd = OpenMode(directory, OTmpFileFlag | ODirectory | ORdWr | OCloExec, (int)mode);
        if (fd >= 0)
        {
            return new SafeFileHandle(fd, ownsHandle: true);
        }

        int errno = Marshal.GetLastPInvokeError();
        if (errno is EOpNotSupp or EIsDir or EInval)
        {
            _tmpFileUnsupported = true;
            return null;
        }

        throw new IOException($"open(O_TMPFILE in {directory}) failed: errno {errno}");
    }

    /// <summary>Gives a file opened by <see cref="TryOpenUnnamed"/> the name <paramref name="path"/>; false if the name exists.</summary>
    public static bool LinkOpenFile(SafeFileHandle file, string path)
    {
        // linkat(fd, "", AT_EMPTY_PATH) names the file without a path walk; Linux allows it to the user who opened
        // the file since 6.10 (before that only with CAP_DAC_READ_SEARCH, and it fails with ENOENT). The
        // /proc/self/fd link works on older kernels for every user, but needs /proc and walks four path components.
        if (!_emptyPathLinkUnsupported)
        {
            if (LinkAtFd(file, string.Empty, AtFdCwd, path, AtEmptyPath) == 0)
            {
                return true;
            }

            int errno = Marshal.GetLastPInvokeError();
            if (errno != ENoEnt)
            {
                return LinkFailed(errno, path);
            }

            // ENOENT is also what a missing target directory gives: only a /proc link that then works shows
            // that the kernel refused the empty path.
            bool linked = LinkThroughProc(file, path);
            _emptyPathLinkUnsupported = true;
            return linked;
        }

        return LinkThroughProc(file, path);
    }

    private static bool LinkThroughProc(SafeFileHandle file, string path)
    {
        string source = string.Create(CultureInfo.InvariantCulture, $"/proc/self/fd/{file.DangerousGetHandle()}");
        if (LinkAt(AtFdCwd, source, AtFdCwd, path, AtSymlinkFollow) == 0)
        {
            return true;
        }

        return LinkFailed(Marshal.GetLastPInvokeError(), path);
    }

    // A name that exists is an answer (false); anything else an error.
    private static bool LinkFailed(int errno, string path) =>
        errno == EExist ? false : throw new IOException($"linkat({path}) failed: errno {errno}");

    /// <summary>Opens a file for reading with open(2) alone on Linux (FileStream adds fstat, flock and fadvise).</summary>
    public static SafeFileHandle OpenForReading(string path)
    {
        if (!IsLinux)
        {
            return File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        }

        return ReadingHandle(Open(path, ORdOnly | OCloExec), path);
    }

    /// <summary>
    /// Opens a directory, to fsync it or to open files in it by name
    /// (<see cref="OpenForReading(SafeFileHandle, string, string)"/>); null off Linux.
    /// </summary>
    public static SafeFileHandle? OpenDirectory(string path)
    {
        if (!IsLinux)
        {
            return null;
        }

        int fd = Open(path, ORdOnly | ODirectory | OCloExec);
        return fd >= 0 ? new SafeFileHandle(fd, ownsHandle: true)
            : throw new IOException($"open({path}) failed: errno {Marshal.GetLastPInvokeError()}");
    }

    /// <summary>
    /// Opens <paramref name="name"/> in the open directory <paramref name="directoryPath"/>: openat(2) resolves one
    /// name instead of a whole path (a POP3 RETR opens one file per message).
    /// </summary>
    public static SafeFileHandle OpenForReading(SafeFileHandle directory, string directoryPath, string name)
    {
        int fd = OpenAt(directory, name, ORdOnly | OCloExec);
        return fd >= 0 ? new SafeFileHandle(fd, ownsHandle: true) : ReadingHandle(fd, Path.Combine(directoryPath, name));
    }

    private static SafeFileHandle ReadingHandle(int fd, string path)
    {
        if (fd >= 0)
        {
            return new SafeFileHandle(fd, ownsHandle: true);
        }

        int errno = Marshal.GetLastPInvokeError();
        throw errno == 2 /* ENOENT */
            ? new FileNotFoundException($"{path} does not exist", path)
            : new IOException($"open({path}) failed: errno {errno}");
    }

    /// <summary>
    /// Reads from a file at an offset. On Linux a bare pread(2): RandomAccess.Read first asks the handle
    /// whether it can seek, an lseek(2) per opened file. Only in 64-bit processes, where off_t is the long
    /// passed here.
    /// </summary>
    public static int ReadAt(SafeFileHandle file, Span<byte> buffer, long offset)
    {
        if (!IsLinux || !Environment.Is64BitProcess)
        {
            return RandomAccess.Read(file, buffer, offset);
        }

        while (true)
        {
            nint n = PRead(file, ref MemoryMarshal.GetReference(buffer), buffer.Length, offset);
            if (n >= 0)
            {
                return (int)n;
            }

            int errno = Marshal.GetLastPInvokeError();
            if (errno != EIntr)
            {
                throw new IOException($"pread failed: errno {errno}");
            }
        }
    }

    /// <summary>
    /// Writes all of <paramref name="buffer"/> at an offset. On Linux bare pwrite(2)s, for the reason
    /// <see cref="ReadAt"/> gives.
    /// </summary>
    public static void WriteAt(SafeFileHandle file, ReadOnlySpan<byte> buffer, long offset)
    {
        if (!IsLinux || !Environment.Is64BitProcess)
        {
            RandomAccess.Write(file, buffer, offset);
            return;
        }

        while (!buffer.IsEmpty)
        {
            nint n = PWrite(file, ref MemoryMarshal.GetReference(buffer), buffer.Length, offset);
            if (n >= 0)
            {
                buffer = buffer[(int)n..];
                offset += n;
                continue;
            }

            int errno = Marshal.GetLastPInvokeError();
            if (errno != EIntr)
            {
                throw new IOException($"pwrite failed: errno {errno}");
            }
        }
    }

    /// <summary>
    /// fsync(2) of an open file. On Linux the bare call: RandomAccess.FlushToDisk first asks the handle whether
    /// it can seek, an lseek(2) per new file.
    /// </summary>
    public static void FlushToDisk(SafeFileHandle file)
    {
        if (!IsLinux)
        {
            RandomAccess.FlushToDisk(file);
            return;
        }

        if (Fsync(file) != 0)
        {
            throw new IOException($"fsync failed: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    /// <summary>True when the process runs as root.</summary>
    public static bool IsRoot => IsLinux && GetEuid() == 0;

    /// <summary>Looks up "user" or "user:group" to numeric ids; null if unknown.</summary>
    public static (int Uid, int Gid)? ResolveOwner(string owner)
    {
        if (!IsLinux)
        {
            return null;
        }

        string user = owner;
        string? group = null;
        int colon = owner.IndexOf(':', StringComparison.Ordinal);
        if (colon >= 0)
        {
            user = owner[..colon];
            group = owner[(colon + 1)..];
        }

        IntPtr pw = GetPwNam(user);
        if (pw == IntPtr.Zero)
        {
            return null;
        }

        // struct passwd { char *pw_name; char *pw_passwd; uid_t pw_uid; gid_t pw_gid; ... }
        int uid = Marshal.ReadInt32(pw, 2 * IntPtr.Size);
        int gid = Marshal.ReadInt32(pw, (2 * IntPtr.Size) + 4);
        if (!string.IsNullOrEmpty(group))
        {
            IntPtr gr = GetGrNam(group);
            if (gr == IntPtr.Zero)
            {
                return null;
            }

            // struct group { char *gr_name; char *gr_passwd; gid_t gr_gid; ... }
            gid = Marshal.ReadInt32(gr, 2 * IntPtr.Size);
        }

        return (uid, gid);
    }

    /// <summary>Changes the owner of an open file.</summary>
    public static void Chown(SafeFileHandle file, int uid, int gid)
    {
        if (FChown(file, uid, gid) != 0)
        {
            throw new IOException($"fchown failed: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    /// <summary>Changes the owner of a path.</summary>
    public static void Chown(string path, int uid, int gid)
    {
        if (ChownPath(path, uid, gid) != 0)
        {
            throw new IOException($"chown({path}) failed: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "openat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int OpenAt(SafeFileHandle directory, string path, int flags);

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int OpenMode(string path, int flags, int mode);

    [LibraryImport("libc", EntryPoint = "linkat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int LinkAt(int oldDirFd, string oldPath, int newDirFd, string newPath, int flags);

    [LibraryImport("libc", EntryPoint = "linkat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int LinkAtFd(SafeFileHandle oldDirFd, string oldPath, int newDirFd, string newPath, int flags);

    [LibraryImport("libc", EntryPoint = "pread", SetLastError = true)]
    private static partial nint PRead(SafeFileHandle fd, ref byte buffer, nint count, long offset);

    [LibraryImport("libc", EntryPoint = "pwrite", SetLastError = true)]
    private static partial nint PWrite(SafeFileHandle fd, ref byte buffer, nint count, long offset);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int Fsync(SafeFileHandle fd);

    [LibraryImport("libc", EntryPoint = "link", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Link(string existing, string newPath);

    [LibraryImport("libc", EntryPoint = "geteuid")]
    private static partial int GetEuid();

    [LibraryImport("libc", EntryPoint = "getpwnam", StringMarshalling = StringMarshalling.Utf8)]
    private static partial IntPtr GetPwNam(string name);

    [LibraryImport("libc", EntryPoint = "getgrnam", StringMarshalling = StringMarshalling.Utf8)]
    private static partial IntPtr GetGrNam(string name);

    [LibraryImport("libc", EntryPoint = "fchown", SetLastError = true)]
    private static partial int FChown(SafeFileHandle fd, int uid, int gid);

    [LibraryImport("libc", EntryPoint = "chown", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int ChownPath(string path, int uid, int gid);
}
