using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace SlimMail.Delivery;

/// <summary>
/// The few POSIX calls .NET does not expose: fsync of a directory, hard links, renames that never replace, ownership.
/// On other systems they degrade to what the platform offers (no directory fsync, copies for links).
/// </summary>
internal static partial class Posix
{
    private const int ORdOnly = 0;
    private const int ORdWr = 2;
    private const int OCloExec = 0x80000;
    private const int OCreat = 0x40;
    private const int OExcl = 0x80;
    private const int AtFdCwd = -100;
    private const int RenameNoReplace = 1;
    private const int ENoEnt = 2;
    private const int EExist = 17;
    private const int EIntr = 4;
    private const int EInval = 22;
    private const int ENoSys = 38;

    // O_DIRECTORY differs between architectures: 0200000 on x86-64, 040000 on arm64 (and arm).
    private static readonly int ODirectory =
        RuntimeInformation.ProcessArchitecture is Architecture.Arm64 or Architecture.Arm ? 0x4000 : 0x10000;

    private static volatile bool _noReplaceUnsupported;

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

    /// <summary>Creates a hard link; false when the platform or the file systems do not allow it, or the name exists.</summary>
    public static bool TryLink(string existing, string newPath)
    {
        if (!IsLinux)
        {
            return false;
        }

        return Link(existing, newPath) == 0;
    }

    /// <summary>
    /// Creates <paramref name="path"/>, which must not exist, readable and writable, with <paramref name="mode"/>
    /// before the umask. On Linux a bare open(2): File.OpenHandle adds an fstat and an flock.
    /// </summary>
    public static SafeFileHandle CreateNew(string path, UnixFileMode mode)
    {
        if (!IsLinux)
        {
            return File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None);
        }

        int fd = OpenMode(path, OCreat | OExcl | ORdWr | OCloExec, (int)mode);
        if (fd >= 0)
        {
            return new SafeFileHandle(fd, ownsHandle: true);
        }

        int errno = Marshal.GetLastPInvokeError();
        throw errno == ENoEnt
            ? new DirectoryNotFoundException($"open({path}) failed: errno {errno} (its directory is missing)")
            : new IOException($"open({path}) failed: errno {errno}");
    }

    /// <summary>
    /// Renames <paramref name="from"/> to <paramref name="to"/> unless <paramref name="to"/> exists (false then):
    /// one renameat2(RENAME_NOREPLACE) on Linux, else a hard link and an unlink, as File.Move does.
    /// </summary>
    public static bool TryRenameNoReplace(string from, string to)
    {
        if (IsLinux && !_noReplaceUnsupported)
        {
            int result;
            try
            {
                result = RenameAt2(AtFdCwd, from, AtFdCwd, to, RenameNoReplace);
            }
            catch (EntryPointNotFoundException)
            {
                result = -1; // a C library without renameat2 (glibc before 2.28)
                Marshal.SetLastPInvokeError(ENoSys);
            }

            if (result == 0)
            {
                return true;
            }

            int errno = Marshal.GetLastPInvokeError();
            if (errno == EExist)
            {
                return false;
            }

            if (errno == ENoEnt)
            {
                throw new DirectoryNotFoundException($"rename({from}, {to}) failed: errno {errno} (a directory is missing)");
            }

            if (errno is not (EInval or ENoSys))
            {
                throw new IOException($"rename({from}, {to}) failed: errno {errno}");
            }

            _noReplaceUnsupported = true; // a file system without the flag
        }

        try
        {
            File.Move(from, to, overwrite: false);
            return true;
        }
        catch (IOException) when (File.Exists(to))
        {
            return false;
        }
    }

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
        throw errno == ENoEnt
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

    [LibraryImport("libc", EntryPoint = "renameat2", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int RenameAt2(int oldDirFd, string oldPath, int newDirFd, string newPath, uint flags);

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
