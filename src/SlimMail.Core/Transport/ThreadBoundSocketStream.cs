using System.Diagnostics;
using System.Net.Sockets;

namespace SlimMail.Transport;

/// <summary>
/// A socket stream for a session that has a <see cref="SessionThread"/>: reads and writes block on that thread
/// (the socket stays in blocking mode: one <c>recv</c> or <c>send</c> per call, no socket engine) and the async
/// methods return completed tasks there. Called from any other thread, the call is made on the session's thread
/// when the caller awaits it, and the caller continues there. (A stream wrapped around this one, such as a pipe
/// reader, can still finish on the caller's thread: engines come back with
/// <see cref="TransportConnection.ReturnToSessionThreadAsync"/>.) Cancellation shuts the socket down in the
/// direction that was waiting, which is what wakes a blocked call; a timed-out read leaves the sending direction
/// open for the goodbye. While fewer session threads run than there are cores, a read polls
/// for up to 50 µs before it blocks, as long as the client keeps answering that quickly.
/// </summary>
public sealed class ThreadBoundSocketStream : Stream
{
    // How long a read polls before it blocks: a little more than a quick client takes to send its next command.
    private static readonly long SpinTicks = Stopwatch.Frequency * 50 / 1_000_000;
    private readonly Socket _socket;
    private readonly SessionThread _thread;
    private bool _clientIsQuick = true;

    /// <summary>A stream over <paramref name="socket"/> (not owned) for the session on <paramref name="thread"/>.</summary>
    public ThreadBoundSocketStream(Socket socket, SessionThread thread)
    {
        ArgumentNullException.ThrowIfNull(socket);
        ArgumentNullException.ThrowIfNull(thread);
        _socket = socket;
        _thread = thread;
    }

    /// <inheritdoc />
    public override bool CanRead => true;

    /// <inheritdoc />
    public override bool CanWrite => true;

    /// <inheritdoc />
    public override bool CanSeek => false;

    /// <inheritdoc />
    public override long Length => throw new NotSupportedException();

    /// <inheritdoc />
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    /// <inheritdoc />
    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_thread.IsCurrent)
        {
            try
            {
                return new ValueTask<int>(Receive(buffer.Span, cancellationToken));
            }
            catch (Exception e)
            {
                return ValueTask.FromException<int>(e);
            }
        }

        return ReceiveOnSessionThread(buffer, cancellationToken);
    }

    /// <inheritdoc />
    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_thread.IsCurrent)
        {
            try
            {
                Send(buffer.Span, cancellationToken);
                return ValueTask.CompletedTask;
            }
            catch (Exception e)
            {
                return ValueTask.FromException(e);
            }
        }

        return SendOnSessionThread(buffer, cancellationToken);
    }

    /// <inheritdoc />
    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    /// <inheritdoc />
    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    /// <inheritdoc />
    public override int Read(byte[] buffer, int offset, int count) => Receive(buffer.AsSpan(offset, count), CancellationToken.None);

    /// <inheritdoc />
    public override int Read(Span<byte> buffer) => Receive(buffer, CancellationToken.None);

    /// <inheritdoc />
    public override void Write(byte[] buffer, int offset, int count) => Send(buffer.AsSpan(offset, count), CancellationToken.None);

    /// <inheritdoc />
    public override void Write(ReadOnlySpan<byte> buffer) => Send(buffer, CancellationToken.None);

    /// <inheritdoc />
    public override void Flush()
    {
    }

    /// <inheritdoc />
    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <inheritdoc />
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    /// <inheritdoc />
    public override void SetLength(long value) => throw new NotSupportedException();

    // Apart from ReadAsync and WriteAsync: a lambda there would allocate its closure on every call, on the session's
    // thread too, where none is needed.
    private ValueTask<int> ReceiveOnSessionThread(Memory<byte> buffer, CancellationToken cancellationToken) =>
        SessionThreadCall<int>.Start(_thread, () => Receive(buffer.Span, cancellationToken));

    private ValueTask SendOnSessionThread(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken) =>
        SessionThreadCall<bool>.StartIgnoringResult(_thread, () =>
        {
            Send(buffer.Span, cancellationToken);
            return true;
        });

    private int Receive(Span<byte> buffer, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (buffer.IsEmpty)
        {
            return 0;
        }

        int received;
        SocketError error;
        long start = Stopwatch.GetTimestamp();
        if (_clientIsQuick && SessionThread.Running < Environment.ProcessorCount)
        {
            // A thread that sleeps in recv is woken by the client's packet, and on a virtual machine waking an
            // idle core costs more than the command: polling for a moment first, while a core is free anyway,
            // took one client's 1 KB RETRs from ~1.2x to 2.1-2.5x Dovecot's rate (docs/benchmarks.md).
            while (!HasData() && Stopwatch.GetTimestamp() - start < SpinTicks)
            {
                Thread.SpinWait(10);
            }
        }

        using (Wake(SocketShutdown.Receive, cancellationToken))
        {
            received = _socket.Receive(buffer, SocketFlags.None, out error);
        }

        // Polling pays only against a client that answers within the window, one fetching message after message
        // nearby; for one farther away, or a person at a keyboard, it would be CPU thrown away at every command.
        _clientIsQuick = Stopwatch.GetTimestamp() - start <= 2 * SpinTicks;

        cancellationToken.ThrowIfCancellationRequested();
        return error == SocketError.Success ? received
            : throw new IOException("Unable to read from the client: " + error, new SocketException((int)error));
    }

    // An error is left for the read that follows to report.
    private bool HasData()
    {
        try
        {
            return _socket.Available > 0;
        }
        catch (SocketException)
        {
            return true;
        }
    }

    private void Send(ReadOnlySpan<byte> buffer, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        using (Wake(SocketShutdown.Both, cancellationToken))
        {
            while (!buffer.IsEmpty)
            {
                int sent = _socket.Send(buffer, SocketFlags.None, out SocketError error);
                cancellationToken.ThrowIfCancellationRequested();
                if (error != SocketError.Success)
                {
                    throw new IOException("Unable to write to the client: " + error, new SocketException((int)error));
                }

                buffer = buffer[sent..];
            }
        }
    }

    private CancellationTokenRegistration Wake(SocketShutdown how, CancellationToken cancellationToken)
    {
        if (!cancellationToken.CanBeCanceled)
        {
            return default;
        }

        return how == SocketShutdown.Receive
            ? cancellationToken.UnsafeRegister(static socket => ShutDown((Socket)socket!, SocketShutdown.Receive), _socket)
            : cancellationToken.UnsafeRegister(static socket => ShutDown((Socket)socket!, SocketShutdown.Both), _socket);
    }

    private static void ShutDown(Socket socket, SocketShutdown how)
    {
        try
        {
            socket.Shutdown(how);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }
    }
}
