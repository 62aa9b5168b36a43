using System.IO.Pipelines;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;

namespace SlimMail.Transport;

/// <summary>A <see cref="TransportConnection"/> over an accepted TCP socket.</summary>
public sealed class SocketConnection : TransportConnection
{
    // Zero-byte reads keep idle connections from pinning a receive buffer each.
    private static readonly StreamPipeReaderOptions ReaderOptions = new(bufferSize: 8192, minimumReadSize: 2048, leaveOpen: true, useZeroByteReads: true);
    // A session thread blocks in its read anyway: a zero-byte read first would only cost a second call.
    private static readonly StreamPipeReaderOptions ThreadReaderOptions = new(bufferSize: 8192, minimumReadSize: 2048, leaveOpen: true);
    private static readonly StreamPipeWriterOptions WriterOptions = new(minimumBufferSize: 4096, leaveOpen: true);

    private readonly Socket _socket;
    private readonly SessionThread? _thread;
    private readonly Stream _stream;
    private readonly StreamPipeReaderOptions _readerOptions;
    private SslStream? _tls;

    /// <summary>Wraps <paramref name="socket"/>; the connection owns it from now on.</summary>
    public SocketConnection(Socket socket)
        : this(socket, null)
    {
    }

    /// <summary>
    /// Wraps <paramref name="socket"/> for a session that runs on <paramref name="thread"/> (see <see cref="SessionThread"/>),
    /// or on the socket engines when it is null; the connection owns the socket from now on.
    /// </summary>
    public SocketConnection(Socket socket, SessionThread? thread)
    {
        ArgumentNullException.ThrowIfNull(socket);
        _socket = socket;
        _thread = thread;
        _socket.NoDelay = true;
        _stream = thread is null ? new NetworkStream(socket, ownsSocket: false) : new ThreadBoundSocketStream(socket, thread);
        _readerOptions = thread is null ? ReaderOptions : ThreadReaderOptions;
        _input = PipeReader.Create(_stream, _readerOptions);
        _output = PipeWriter.Create(_stream, WriterOptions);
        RemoteEndPoint = Normalize((IPEndPoint)socket.RemoteEndPoint!);
        LocalEndPoint = Normalize((IPEndPoint)socket.LocalEndPoint!);
    }

    /// <inheritdoc />
    public override PipeReader Input => _input;

    /// <inheritdoc />
    public override PipeWriter Output => _output;

    /// <inheritdoc />
    public override bool IsSecure => _tls is not null;

    /// <inheritdoc />
    public override string? TlsVersion => _tls is null ? null : ProtocolName(_tls.SslProtocol);

    /// <inheritdoc />
    public override string? TlsDescription => _tls is null ? null
        : $"{ProtocolName(_tls.SslProtocol)} with cipher {_tls.NegotiatedCipherSuite}";

    private PipeReader _input;
    private PipeWriter _output;

    /// <inheritdoc />
    public override ValueTask ReturnToSessionThreadAsync() =>
        _thread is null || _thread.IsCurrent ? ValueTask.CompletedTask : SessionThreadCall<bool>.StartIgnoringResult(_thread, static () => true);

    /// <inheritdoc />
    public override async Task StartTlsAsync(SslServerAuthenticationOptions options, CancellationToken cancellationToken)
    {
        if (_tls is not null)
        {
            throw new InvalidOperationException("TLS is already active.");
        }

        // Whatever plaintext is buffered (commands pipelined after STARTTLS) goes with the old reader.
        await _output.CompleteAsync().ConfigureAwait(false);
        await _input.CompleteAsync().ConfigureAwait(false);
        var tls = new SslStream(_stream, leaveInnerStreamOpen: true);
        _tls = tls;
        _input = PipeReader.Create(tls, _readerOptions);
        _output = PipeWriter.Create(tls, WriterOptions);
        await tls.AuthenticateAsServerAsync(options, cancellationToken).ConfigureAwait(false);
    }

    private static string ProtocolName(System.Security.Authentication.SslProtocols protocol) => protocol switch
    {
        System.Security.Authentication.SslProtocols.Tls13 => "TLSv1.3",
        System.Security.Authentication.SslProtocols.Tls12 => "TLSv1.2",
        _ => protocol.ToString(),
    };

    /// <inheritdoc />
    public override IPEndPoint RemoteEndPoint { get; }

    /// <inheritdoc />
    public override IPEndPoint LocalEndPoint { get; }

    /// <inheritdoc />
    public override void Abort()
    {
        try
        {
            _socket.Close(0);
        }
        catch (ObjectDisposedException)
        {
        }
    }

    /// <inheritdoc />
    public override async ValueTask DisposeAsync()
    {
        try
        {
            await Output.CompleteAsync().ConfigureAwait(false);
            await Input.CompleteAsync().ConfigureAwait(false);
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (SocketException)
        {
        }
        catch (IOException)
        {
        }
        catch (ObjectDisposedException)
        {
        }
        finally
        {
            if (_tls is not null)
            {
                await _tls.DisposeAsync().ConfigureAwait(false);
            }

            await _stream.DisposeAsync().ConfigureAwait(false);
            _socket.Dispose();
        }
    }

    // A dual-mode socket reports IPv4 clients as ::ffff:a.b.c.d; limits and logs want a.b.c.d.
    private static IPEndPoint Normalize(IPEndPoint endPoint) => endPoint.Address.IsIPv4MappedToIPv6
        ? new IPEndPoint(endPoint.Address.MapToIPv4(), endPoint.Port)
        : endPoint;
}
