using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Net;
using System.Text;

namespace SlimMail.Transport;

/// <summary>
/// Reads the PROXY protocol header (HAProxy's specification, versions 1 and 2) that a load balancer sends
/// before the client's first byte, and returns the original client's address. A missing or malformed
/// header is an error: the connection must be closed, never treated as a direct client.
/// </summary>
public static class ProxyProtocol
{
    private const int MaxV1Length = 107;
    private static readonly byte[] V2Signature = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A];

    /// <summary>
    /// Reads and consumes the header. Returns the client's endpoint, or null when the proxy says the
    /// connection is its own (v1 <c>UNKNOWN</c>, v2 <c>LOCAL</c>). Throws <see cref="InvalidDataException"/>
    /// when the header is missing or malformed.
    /// </summary>
    public static async ValueTask<IPEndPoint?> ReadAsync(PipeReader input, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(input);
        while (true)
        {
            ReadResult result = await input.ReadAsync(cancellationToken).ConfigureAwait(false);
            ReadOnlySequence<byte> buffer = result.Buffer;
            ParseStatus status = TryParse(buffer, out IPEndPoint? client, out long consumed);
            if (status == ParseStatus.Done)
            {
                input.AdvanceTo(buffer.GetPosition(consumed));
                return client;
            }

            if (status == ParseStatus.Invalid || result.IsCompleted)
            {
                input.AdvanceTo(buffer.Start, buffer.End);
                throw new InvalidDataException("missing or malformed PROXY protocol header");
            }

            input.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    /// <summary>
    /// For a listener behind a proxy: checks that the connection comes from a trusted proxy and reads its header.
    /// Returns the client's endpoint (the socket's own for a proxy's LOCAL connection), or null with a reason
    /// when the connection must be closed.
    /// </summary>
    public static async ValueTask<(IPEndPoint? Client, string? Refusal)> AcceptAsync(TransportConnection connection,
        IReadOnlyList<IPNetwork> trustedProxies, TimeSpan timeout, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(trustedProxies);
        IPAddress proxy = connection.RemoteEndPoint.Address;
        bool trusted = false;
        foreach (IPNetwork network in trustedProxies)
        {
            trusted |= network.Contains(proxy);
        }

        if (!trusted)
        {
            return (null, "not a trusted proxy");
        }

        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        try
        {
            return (await ReadAsync(connection.Input, deadline.Token).ConfigureAwait(false) ?? connection.RemoteEndPoint, null);
        }
        catch (Exception e) when (e is InvalidDataException or OperationCanceledException or IOException)
        {
            return (null, e is OperationCanceledException ? "no PROXY header in time" : e.Message);
        }
    }

    internal enum ParseStatus
    {
        Done,
        NeedMore,
        Invalid,
    }

    internal static ParseStatus TryParse(ReadOnlySequence<byte> buffer, out IPEndPoint? client, out long consumed)
    {
        client = null;
        consumed = 0;
        Span<byte> head = stackalloc byte[16];
        int have = (int)Math.Min(buffer.Length, head.Length);
        buffer.Slice(0, have).CopyTo(head);
        if (have > 0 && head[0] == 0x0D)
        {
            return ParseV2(buffer, head[..have], out client, out consumed);
        }

        if (have > 0 && head[0] == (byte)'P')
        {
            return ParseV1(buffer, out client, out consumed);
        }

        return have == 0 ? ParseStatus.NeedMore : ParseStatus.Invalid;
    }

    // "PROXY TCP4 192.0.2.1 198.51.100.1 56324 25\r\n" or "PROXY UNKNOWN ...\r\n"
    private static ParseStatus ParseV1(ReadOnlySequence<byte> buffer, out IPEndPoint? client, out long consumed)
    {
        client = null;
        consumed = 0;
        SequencePosition? lf = buffer.Slice(0, Math.Min(buffer.Length, MaxV1Length)).PositionOf((byte)'\n');
        if (lf is null)
        {
            return buffer.Length >= MaxV1Length || !StartsLikeV1(buffer) ? ParseStatus.Invalid : ParseStatus.NeedMore;
        }

        ReadOnlySequence<byte> line = buffer.Slice(0, lf.Value);
        consumed = line.Length + 1;
        string text = Encoding.ASCII.GetString(line.ToArray());
        if (!text.EndsWith('\r'))
        {
            return ParseStatus.Invalid;
        }

        string[] parts = text[..^1].Split(' ');
        if (parts.Length >= 2 && parts[0] == "PROXY" && parts[1] == "UNKNOWN")
        {
            return ParseStatus.Done;
        }

        if (parts.Length != 6 || parts[0] != "PROXY" || parts[1] is not ("TCP4" or "TCP6")
            || !IPAddress.TryParse(parts[2], out IPAddress? source) || !IPAddress.TryParse(parts[3], out _)
            || !ushort.TryParse(parts[4], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out ushort port)
            || !ushort.TryParse(parts[5], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out _)
            || (parts[1] == "TCP4") != (source.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork))
        {
            return ParseStatus.Invalid;
        }

        client = new IPEndPoint(source, port);
        return ParseStatus.Done;
    }

    private static bool StartsLikeV1(ReadOnlySequence<byte> buffer)
    {
        ReadOnlySpan<byte> prefix = "PROXY "u8;
        Span<byte> start = stackalloc byte[6];
        int n = (int)Math.Min(buffer.Length, 6);
        buffer.Slice(0, n).CopyTo(start);
        return prefix[..n].SequenceEqual(start[..n]);
    }

    private static ParseStatus ParseV2(ReadOnlySequence<byte> buffer, ReadOnlySpan<byte> head, out IPEndPoint? client, out long consumed)
    {
        client = null;
        consumed = 0;
        int compare = Math.Min(head.Length, V2Signature.Length);
        if (!head[..compare].SequenceEqual(V2Signature.AsSpan(0, compare)))
        {
            return ParseStatus.Invalid;
        }

        if (head.Length < 16)
        {
            return ParseStatus.NeedMore;
        }

        byte versionCommand = head[12];
        byte family = head[13];
        int length = BinaryPrimitives.ReadUInt16BigEndian(head[14..16]);
        if (versionCommand >> 4 != 2 || length > 2048)
        {
            return ParseStatus.Invalid;
        }

        if (buffer.Length < 16 + length)
        {
            return ParseStatus.NeedMore;
        }

        consumed = 16 + length;
        byte[] addresses = buffer.Slice(16, length).ToArray();
        switch (versionCommand & 0x0F)
        {
            case 0x0: // LOCAL: the proxy's own connection (health checks)
                return ParseStatus.Done;
            case 0x1: // PROXY
                break;
            default:
                return ParseStatus.Invalid;
        }

        switch (family)
        {
            case 0x11 when length >= 12: // TCP over IPv4
                client = new IPEndPoint(new IPAddress(addresses.AsSpan(0, 4)), BinaryPrimitives.ReadUInt16BigEndian(addresses.AsSpan(8, 2)));
                return ParseStatus.Done;
            case 0x21 when length >= 36: // TCP over IPv6
                client = new IPEndPoint(new IPAddress(addresses.AsSpan(0, 16)), BinaryPrimitives.ReadUInt16BigEndian(addresses.AsSpan(32, 2)));
                return ParseStatus.Done;
            case 0x00: // UNSPEC
                return ParseStatus.Done;
            default:
                return ParseStatus.Invalid;
        }
    }
}
