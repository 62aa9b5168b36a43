using System.Buffers;
using Microsoft.Win32.SafeHandles;

namespace SlimMail.Delivery;

/// <summary>
/// A file that gets its name only once its bytes are on disk: written under a temporary name through a pooled
/// 64 KB buffer with bare pwrite(2)s (a small file in one write), fsync'd, then renamed into place; nothing is
/// ever half-visible. The caller fsyncs the directory afterwards (<see cref="DirectorySync"/>), so that many
/// files share one. The file is created at the first write that reaches the disk, so a small one costs its
/// system calls where <see cref="FlushToDisk"/> runs (a disk thread) and none while it is received.
/// </summary>
/// <remarks>
/// Not an unnamed file (O_TMPFILE) linked into place, though that is one directory entry less: its inode is
/// on disk with a link count of 0 when it is fsync'd, and the link that raises it to 1 is made durable by the
/// directory's fsync only where the file system journals the two together. On ext4 without a journal the inode
/// stays at 0 on disk until writeback (~30 s), and e2fsck after a power loss in that window deletes the file and
/// clears its directory entry: an acknowledged message lost. A file created with a name has a link count of 1
/// when it is fsync'd, whatever later renames do.
/// </remarks>
internal sealed class DurableFile : IDisposable
{
    private const int BufferSize = 64 * 1024;

    private readonly string _temporaryPath;
    private readonly UnixFileMode _mode;
    private readonly (int Uid, int Gid)? _owner;
    private SafeFileHandle? _file;
    private byte[]? _buffer;
    private int _buffered;
    private long _offset;
    private bool _published;

    /// <param name="temporaryPath">The name to write under (Maildir's <c>tmp/</c>), renamed into place; on the file system of the final name.</param>
    /// <param name="mode">The file's mode, set exactly (not through the umask) before any byte is written.</param>
    /// <param name="owner">Owner to give the file when running as root.</param>
    public DurableFile(string temporaryPath, UnixFileMode mode, (int Uid, int Gid)? owner = null)
    {
        _temporaryPath = temporaryPath;
        _mode = mode;
        _owner = owner;
        _buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
    }

    /// <summary>Bytes written so far.</summary>
    public long Length => _offset + _buffered;

    /// <summary>The open file (created if nothing reached the disk yet), to read back what was written.</summary>
    public SafeFileHandle Handle => _file ?? (_published ? throw new InvalidOperationException("the file was published and closed") : Create());

    /// <summary>Adds bytes; every full 64 KB goes to the page cache at once.</summary>
    public void Append(ReadOnlySpan<byte> bytes)
    {
        ObjectDisposedException.ThrowIf(_buffer is null, this);
        while (!bytes.IsEmpty)
        {
            int n = Math.Min(bytes.Length, BufferSize - _buffered);
            bytes[..n].CopyTo(_buffer.AsSpan(_buffered));
            _buffered += n;
            bytes = bytes[n..];
            if (_buffered == BufferSize)
            {
                WriteBuffer();
            }
        }
    }

    /// <summary>Writes what is buffered and fsyncs the file. Blocks: call from <see cref="BlockingIo"/> work.</summary>
    public void FlushToDisk()
    {
        WriteBuffer();
        Posix.FlushToDisk(Handle);
    }

    /// <summary>
    /// Gives the file a second name before <see cref="TryPublish"/> (the same message for another Maildir);
    /// false when the platform or the file systems do not allow a hard link.
    /// </summary>
    public bool TryLinkAlso(string path)
    {
        _ = Handle; // creates the file if nothing has reached the disk yet: a link needs it to exist
        return Posix.TryLink(_temporaryPath, path);
    }

    /// <summary>
    /// Renames the file to <paramref name="path"/> and closes it; false (and the file left where it is) when the name
    /// exists, unless <paramref name="replace"/>.
    /// </summary>
    public bool TryPublish(string path, bool replace = false)
    {
        SafeFileHandle file = Handle;
        if (replace)
        {
            File.Move(_temporaryPath, path, overwrite: true);
        }
        else if (!Posix.TryRenameNoReplace(_temporaryPath, path))
        {
            return false;
        }

        _published = true;
        file.Dispose();
        _file = null;
        return true;
    }

    /// <summary>Closes the file; one never published is removed.</summary>
    public void Dispose()
    {
        bool created = _file is not null;
        _file?.Dispose();
        _file = null;
        if (!_published && created)
        {
            try
            {
                File.Delete(_temporaryPath);
            }
            catch (IOException)
            {
            }
        }

        if (_buffer is not null)
        {
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = null;
        }
    }

    private void WriteBuffer()
    {
        if (_buffered == 0)
        {
            return;
        }

        Posix.WriteAt(Handle, _buffer.AsSpan(0, _buffered), _offset);
        _offset += _buffered;
        _buffered = 0;
    }

    private SafeFileHandle Create()
    {
        SafeFileHandle handle = Posix.CreateNew(_temporaryPath, _mode);
        _file = handle;
        if (!OperatingSystem.IsWindows())
        {
            // Created under the umask (or a default ACL); set the mode exactly before any byte is written.
            File.SetUnixFileMode(handle, _mode);
            if (_owner is { } owner && Posix.IsRoot)
            {
                Posix.Chown(handle, owner.Uid, owner.Gid);
            }
        }

        return handle;
    }
}
