using System.Collections;
using System.Globalization;
using System.Net;

namespace SlimMail.Transport;

/// <summary>
/// The logging scope of one SMTP or POP3 session: every line logged while it runs (by the engine, the
/// deliveries, the authenticator) carries the session id, the client address and the protocol as structured
/// fields (the JSON console formatter writes them under <c>Scopes</c>; the simple one appends them).
/// </summary>
internal sealed class SessionLogScope : IReadOnlyList<KeyValuePair<string, object?>>
{
    private static long _counter;

    private readonly string _protocol;
    private readonly string _client;

    public SessionLogScope(string protocol, IPEndPoint client)
    {
        _protocol = protocol;
        _client = client.ToString();
        SessionId = string.Create(CultureInfo.InvariantCulture, $"{protocol[0]}{Interlocked.Increment(ref _counter):X}");
    }

    /// <summary>Short and unique in this process: <c>s1A</c> for SMTP, <c>p2B</c> for POP3.</summary>
    public string SessionId { get; }

    public int Count => 3;

    public KeyValuePair<string, object?> this[int index] => index switch
    {
        0 => new("SessionId", SessionId),
        1 => new("Client", _client),
        2 => new("Protocol", _protocol),
        _ => throw new ArgumentOutOfRangeException(nameof(index)),
    };

    public IEnumerator<KeyValuePair<string, object?>> GetEnumerator()
    {
        for (int i = 0; i < Count; i++)
        {
            yield return this[i];
        }
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    public override string ToString() => $"session={SessionId} client={_client}";
}
