using System.Buffers;
using Microsoft.Win32.SafeHandles;

namespace SlimMail.Delivery;

/// <summary>
/// A file that gets its name only once its bytes are on disk: written through a pooled 64 KB buffer with bare
/// pwrite(2)s (a small file in one write), fsync'd, then published — linked into place from an unnamed file
/// (O_TMPFILE, created in the directory it will be named in) where Linux allows it, else renamed from a
/// temporary path. An unnamed file leaves nothing behind if the process dies; nothing is ever half-visible.
/// The caller fsyncs the directory afterwards (<see cref="DirectorySync"/>), so that many files share one.
/// The file is created at the first write that reaches the disk, so a small one costs its system calls where
/// <see cref="FlushToDisk"/> runs (a disk thread) and none while it is received.
/// </summary>
internal sealed class DurableFile : IDisposable
{
    private const int BufferSize = 64 * 1024;

    private readonly string? _directory;
    private readonly string _temporaryPath;
    private readonly UnixFileMode _mode;
    private readonly (int Uid, int Gid)? _owner;
    private SafeFileHandle? _file;
    private bool _temporary; // created as the named temporary file rather than unnamed
    private byte[]? _buffer;
    private int _buffered;
    private long _offset;
    private bool _published;

    /// <param name="directory">Where the file will be named: created unnamed there when possible; null to always write <paramref name="temporaryPath"/> (a file that will replace another by rename).</param>
    /// <param name="temporaryPath">The named file to write instead (Maildir's <c>tmp/</c>), renamed into place.</param>
    /// <param name="mode">The file's mode, set exactly (not through the umask) before any byte is written.</param>
    /// <param name="owner">Owner to give the file when running as root.</param>
    public DurableFile(string? directory, string temporaryPath, UnixFileMode mode, (int Uid, int Gid)? owner = null)
    {
        _directory = directory;
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
    public bool TryLinkAlso(string path) =>
        _temporary ? Posix.TryLink(_temporaryPath, path) : Posix.LinkOpenFile(Handle, path);

    /// <summary>
    /// Names the file <paramref name="path"/> and closes it; false (and the file left unnamed) when the name exists,
    /// unless <paramref name="replace"/>: then a temporary file is renamed over it (an unnamed one cannot replace).
    /// </summary>
    public bool TryPublish(string path, bool replace = false)
    {
        SafeFileHandle file = Handle;
        if (!_temporary)
        {
            if (replace)
            {
                throw new InvalidOperationException("an unnamed file cannot replace another: create it without a directory");
            }

            if (!Posix.LinkOpenFile(file, path))
            {
                return false;
            }
        }
        else
        {
            if (!replace && File.Exists(path))
            {
                return false;
            }

            File.Move(_temporaryPath, path, overwrite: replace);
        }

        _published = true;
        file.Dispose();
        _file = null;
        return true;
    }

    /// <summary>Closes the file; one never published is removed (an unnamed one vanishes by itself).</summary>
    public void Dispose()
    {
        _file?.Dispose();
        _file = null;
        if (!_published && _temporary)
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
        SafeFileHandle? handle = _directory is null ? null : Posix.TryOpenUnnamed(_directory, _mode);
        if (handle is null)
        {
            _temporary = true;
            handle = File.OpenHandle(_temporaryPath, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None);
        }

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
