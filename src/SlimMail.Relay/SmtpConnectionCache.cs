using System.Diagnostics;

namespace SlimMail.Relay;

/// <summary>
/// Connections to remote hosts kept open after a delivery, so that the next message to the same host skips the
/// TCP set-up, the greeting, EHLO, STARTTLS and AUTH: Postfix's connection cache, with its default limits. An idle
/// connection is closed (QUIT) after <see cref="IdleLimit"/>; none is reused once older than
/// <see cref="ReuseLimit"/>. A connection the server closed or spoke on while idle is dropped when taken.
/// </summary>
public sealed class SmtpConnectionCache : IAsyncDisposable
{
    /// <summary>How long a connection may wait for its next message (Postfix's smtp_connection_cache_time_limit).</summary>
    public static readonly TimeSpan IdleLimit = TimeSpan.FromSeconds(2);

    /// <summary>How long after it was opened a connection may still be reused (Postfix's smtp_connection_reuse_time_limit).</summary>
    public static readonly TimeSpan ReuseLimit = TimeSpan.FromSeconds(300);

    private readonly Dictionary<string, Stack<(SmtpClientConnection Connection, long IdleSince)>> _idle = new(StringComparer.OrdinalIgnoreCase);
    private readonly int _maxIdlePerHost;
    private readonly int _maxIdle;
    private readonly Timer _sweeper;
    private int _count;
    private bool _disposed;

    /// <summary>
    /// Creates a cache that keeps up to <paramref name="maxIdlePerHost"/> idle connections per host and
    /// <paramref name="maxIdle"/> in all.
    /// </summary>
    public SmtpConnectionCache(int maxIdlePerHost, int maxIdle)
    {
        _maxIdlePerHost = Math.Max(1, maxIdlePerHost);
        _maxIdle = Math.Max(1, maxIdle);
        // Swept twice a second: a connection is closed at most half a second past its idle limit.
        _sweeper = new Timer(_ => CloseIdle(all: false), null, TimeSpan.FromMilliseconds(500), TimeSpan.FromMilliseconds(500));
    }

    /// <summary>The idle connections now, over all hosts.</summary>
    public int IdleCount
    {
        get
        {
            lock (_idle)
            {
                return _count;
            }
        }
    }

    /// <summary>An idle connection to <paramref name="host"/> that still looks open, or null.</summary>
    public SmtpClientConnection? TryTake(RemoteHost host)
    {
        ArgumentNullException.ThrowIfNull(host);
        string key = host.ToString();
        while (true)
        {
            SmtpClientConnection connection;
            lock (_idle)
            {
                if (!_idle.TryGetValue(key, out Stack<(SmtpClientConnection Connection, long IdleSince)>? stack) || !stack.TryPop(out var entry))
                {
                    return null;
                }

                connection = entry.Connection;
                _count--;
            }

            if (connection.LooksIdle && Stopwatch.GetElapsedTime(connection.OpenedAt) < ReuseLimit)
            {
                return connection;
            }

            _ = connection.DisposeAsync().AsTask();
        }
    }

    /// <summary>
    /// Keeps <paramref name="connection"/>, whose last transaction ended normally, for the next message to
    /// <paramref name="host"/>; closes it instead when it is too old or enough are already waiting.
    /// </summary>
    public async Task ReturnAsync(RemoteHost host, SmtpClientConnection connection)
    {
        ArgumentNullException.ThrowIfNull(host);
        ArgumentNullException.ThrowIfNull(connection);
        if (Stopwatch.GetElapsedTime(connection.OpenedAt) < ReuseLimit)
        {
            string key = host.ToString();
            lock (_idle)
            {
                if (!_disposed)
                {
                    if (!_idle.TryGetValue(key, out Stack<(SmtpClientConnection Connection, long IdleSince)>? stack))
                    {
                        _idle[key] = stack = new Stack<(SmtpClientConnection, long)>();
                    }

                    if (stack.Count < _maxIdlePerHost && _count < _maxIdle)
                    {
                        stack.Push((connection, Stopwatch.GetTimestamp()));
                        _count++;
                        return;
                    }
                }
            }
        }

        await CloseAsync(connection).ConfigureAwait(false);
    }

    /// <summary>Closes every idle connection (QUIT).</summary>
    public async ValueTask DisposeAsync()
    {
        lock (_idle)
        {
            _disposed = true;
        }

        await _sweeper.DisposeAsync().ConfigureAwait(false);
        await Task.WhenAll(CloseIdle(all: true)).ConfigureAwait(false);
    }

    private List<Task> CloseIdle(bool all)
    {
        var closing = new List<Task>();
        List<string>? empty = null;
        lock (_idle)
        {
            foreach ((string key, Stack<(SmtpClientConnection Connection, long IdleSince)> stack) in _idle)
            {
                // Most recently returned on top: keep those, close the ones idle for too long beneath them.
                var keep = new List<(SmtpClientConnection, long)>(stack.Count);
                while (stack.TryPop(out var entry))
                {
                    if (all || Stopwatch.GetElapsedTime(entry.IdleSince) >= IdleLimit)
                    {
                        closing.Add(CloseAsync(entry.Connection));
                        _count--;
                    }
                    else
                    {
                        keep.Add(entry);
                    }
                }

                for (int i = keep.Count - 1; i >= 0; i--)
                {
                    stack.Push(keep[i]);
                }

                if (stack.Count == 0)
                {
                    empty ??= [];
                    empty.Add(key);
                }
            }

            // Hosts come and go (MX mode): forget the ones with nothing kept.
            foreach (string key in empty ?? [])
            {
                _idle.Remove(key);
            }
        }

        return closing;
    }

    private static async Task CloseAsync(SmtpClientConnection connection)
    {
        await connection.QuitAsync().ConfigureAwait(false);
        await connection.DisposeAsync().ConfigureAwait(false);
    }
}
