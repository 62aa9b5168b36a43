using Microsoft.Win32.SafeHandles;

namespace SlimMail.Delivery;

/// <summary>
/// A read-only stream over a stored message file, opened with a bare open(2) on Linux: no advisory lock,
/// no fstat and no fadvise as FileStream does — per POP3 RETR those were three of the file's five syscalls.
/// Messages are never rewritten in place (a Maildir file is complete before it has a name), so the lock
/// FileStream takes protects nothing here. Reads are bare pread(2)s, and a short read ends the stream
/// without the extra read that would return 0: a regular file returns less than asked only at its end.
/// </summary>
internal sealed class MessageFileStream : Stream
{
    private readonly SafeFileHandle _file;
    private long _position;
    private bool _atEnd;

    public MessageFileStream(string path) => _file = Posix.OpenForReading(path);

    /// <summary>Opens the file <paramref name="name"/> of the open directory <paramref name="directoryPath"/>.</summary>
    public MessageFileStream(SafeFileHandle directory, string directoryPath, string name) =>
        _file = Posix.OpenForReading(directory, directoryPath, name);

    public override bool CanRead => !_file.IsClosed;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => _position;
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        if (_atEnd || buffer.IsEmpty)
        {
            return 0;
        }

        int n = Posix.ReadAt(_file, buffer, _position);
        _position += n;
        _atEnd = n < buffer.Length;
        return n;
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(Read(buffer.Span));

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        Task.FromResult(Read(buffer.AsSpan(offset, count)));

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _file.Dispose();
        }

        base.Dispose(disposing);
    }
}
