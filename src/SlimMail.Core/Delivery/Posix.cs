using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace SlimMail.Delivery;

/// <summary>
/// The few POSIX calls .NET does not expose: fsync of a directory, hard links, ownership.
/// On other systems they degrade to what the platform offers (no directory fsync, copies for links).
/// </summary>
internal static partial class Posix
{
    private const int ORdOnly = 0;
    private const int ODirectory = 0x10000; // Linux x86-64 and arm64
    private const int OCloExec = 0x80000;

    public static bool IsLinux { get; } = OperatingSystem.IsLinux();

    /// <summary>Makes a directory's entries (a rename into it) durable.</summary>
    public static void FsyncDirectory(string path)
    {
        if (!IsLinux)
        {
            return;
        }

        int fd = Open(path, ORdOnly | ODirectory | OCloExec);
        if (fd < 0)
        {
            throw new IOException($"open({path}) failed: errno {Marshal.GetLastPInvokeError()}");
        }

        try
        {
            if (Fsync(fd) != 0)
            {
                throw new IOException($"fsync({path}) failed: errno {Marshal.GetLastPInvokeError()}");
            }
        }
        finally
        {
            _ = Close(fd);
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

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);

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
