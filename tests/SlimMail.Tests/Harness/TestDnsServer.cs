using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace SlimMail.Tests.Harness;

/// <summary>
/// An authoritative-looking DNS server on loopback (UDP and TCP on one port) for the relay tests: answers
/// from a table of records, NXDOMAIN or SERVFAIL for listed names, and for "truncated" names a UDP answer
/// with TC set (the full answer only over TCP). Counts the queries it gets.
/// </summary>
internal sealed class TestDnsServer : IAsyncDisposable
{
    private readonly Socket _udp;
    private readonly TcpListener _tcp;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _udpLoop;
    private readonly Task _tcpLoop;

    public TestDnsServer()
    {
        while (true)
        {
            _udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            _udp.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            Port = ((IPEndPoint)_udp.LocalEndPoint!).Port;
            try
            {
                _tcp = new TcpListener(IPAddress.Loopback, Port);
                _tcp.Start();
                break;
            }
            catch (SocketException)
            {
                _udp.Dispose();
            }
        }

        _udpLoop = Task.Run(UdpLoopAsync);
        _tcpLoop = Task.Run(TcpLoopAsync);
    }

    public int Port { get; }

    public ConcurrentDictionary<(string Name, ushort Type), List<(ushort Type, byte[] Data)>> Records { get; } = new();

    public HashSet<string> NxDomain { get; } = new(StringComparer.OrdinalIgnoreCase);

    public HashSet<string> ServFail { get; } = new(StringComparer.OrdinalIgnoreCase);

    public HashSet<string> TruncateOverUdp { get; } = new(StringComparer.OrdinalIgnoreCase);

    public ConcurrentQueue<(string Name, ushort Type, string Transport)> Queries { get; } = new();

    public void AddMx(string domain, ushort preference, string exchange)
    {
        byte[] name = Name(exchange);
        byte[] data = new byte[2 + name.Length];
        BinaryPrimitives.WriteUInt16BigEndian(data, preference);
        name.CopyTo(data, 2);
        Add(domain, 15, 15, data);
    }

    public void AddAddress(string host, IPAddress address) =>
        Add(host, address.AddressFamily == AddressFamily.InterNetwork ? (ushort)1 : (ushort)28, address.AddressFamily == AddressFamily.InterNetwork ? (ushort)1 : (ushort)28, address.GetAddressBytes());

    // A CNAME answers every type of query for its name.
    public void AddCname(string name, string target)
    {
        foreach (ushort type in new ushort[] { 1, 15, 28 })
        {
            Add(name, type, 5, Name(target));
        }
    }

    private void Add(string name, ushort queryType, ushort type, byte[] data) =>
        Records.GetOrAdd((name.ToLowerInvariant(), queryType), _ => []).Add((type, data));

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _udp.Dispose();
        _tcp.Stop();
        await Task.WhenAll(_udpLoop, _tcpLoop).ContinueWith(_ => { }, TaskScheduler.Default);
        _stop.Dispose();
    }

    private async Task UdpLoopAsync()
    {
        byte[] buffer = new byte[512];
        while (!_stop.IsCancellationRequested)
        {
            SocketReceiveFromResult received;
            try
            {
                received = await _udp.ReceiveFromAsync(buffer, SocketFlags.None, new IPEndPoint(IPAddress.Any, 0), _stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }

            byte[]? answer = Answer(buffer.AsSpan(0, received.ReceivedBytes), udp: true);
            if (answer is not null)
            {
                await _udp.SendToAsync(answer, SocketFlags.None, received.RemoteEndPoint);
            }
        }
    }

    private async Task TcpLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _tcp.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }

            using (client)
            {
                NetworkStream stream = client.GetStream();
                byte[] length = new byte[2];
                await stream.ReadExactlyAsync(length);
                byte[] query = new byte[BinaryPrimitives.ReadUInt16BigEndian(length)];
                await stream.ReadExactlyAsync(query);
                byte[]? answer = Answer(query, udp: false);
                if (answer is not null)
                {
                    byte[] framed = new byte[answer.Length + 2];
                    BinaryPrimitives.WriteUInt16BigEndian(framed, (ushort)answer.Length);
                    answer.CopyTo(framed, 2);
                    await stream.WriteAsync(framed);
                }
            }
        }
    }

    private byte[]? Answer(ReadOnlySpan<byte> query, bool udp)
    {
        if (query.Length < 17)
        {
            return null;
        }

        // The question: labels from offset 12, then type and class.
        var labels = new List<string>();
        int offset = 12;
        while (query[offset] != 0)
        {
            labels.Add(Encoding.ASCII.GetString(query.Slice(offset + 1, query[offset])));
            offset += 1 + query[offset];
        }

        offset++;
        string name = string.Join('.', labels).ToLowerInvariant();
        ushort type = BinaryPrimitives.ReadUInt16BigEndian(query[offset..]);
        int questionEnd = offset + 4;
        Queries.Enqueue((name, type, udp ? "udp" : "tcp"));

        int rcode = NxDomain.Contains(name) ? 3 : ServFail.Contains(name) ? 2 : 0;
        bool truncate = udp && TruncateOverUdp.Contains(name);
        var answers = new List<byte>();
        int count = 0;
        if (rcode == 0 && !truncate && Records.TryGetValue((name, type), out List<(ushort Type, byte[] Data)>? records))
        {
            foreach ((ushort recordType, byte[] data) in records)
            {
                answers.AddRange(Name(name));
                answers.AddRange([(byte)(recordType >> 8), (byte)recordType, 0, 1, 0, 0, 0, 60, (byte)(data.Length >> 8), (byte)data.Length]);
                answers.AddRange(data);
                count++;
            }
        }

        byte[] response = new byte[questionEnd + answers.Count];
        query[..questionEnd].CopyTo(response);
        response[2] = (byte)(0x80 | 0x04 | (truncate ? 0x02 : 0) | (query[2] & 0x01)); // QR, AA, TC, RD
        response[3] = (byte)(0x80 | rcode); // RA
        BinaryPrimitives.WriteUInt16BigEndian(response.AsSpan(6), (ushort)count);
        response[8] = response[9] = response[10] = response[11] = 0;
        answers.CopyTo(response, questionEnd);
        return response;
    }

    private static byte[] Name(string name)
    {
        var bytes = new List<byte>();
        foreach (string label in name.TrimEnd('.').Split('.', StringSplitOptions.RemoveEmptyEntries))
        {
            bytes.Add((byte)label.Length);
            bytes.AddRange(Encoding.ASCII.GetBytes(label));
        }

        bytes.Add(0);
        return [.. bytes];
    }
}
