using System.Collections.Concurrent;
using System.Net;

namespace SlimMail.Transport;

/// <summary>
/// Counts open connections, in total and per client address, and refuses the ones over either limit.
/// Shared by every listener of one protocol, so the limits hold across ports.
/// </summary>
public sealed class ConnectionLimiter
{
    private readonly ConcurrentDictionary<IPAddress, int> _perAddress = new();
    private readonly int _maxTotal;
    private readonly int _maxPerAddress;
    private int _total;

    /// <summary>Creates a limiter; a limit of 0 or less means unlimited.</summary>
    public ConnectionLimiter(int maxTotal, int maxPerAddress)
    {
        _maxTotal = maxTotal <= 0 ? int.MaxValue : maxTotal;
        _maxPerAddress = maxPerAddress <= 0 ? int.MaxValue : maxPerAddress;
    }

    /// <summary>Open connections now.</summary>
    public int Count => Volatile.Read(ref _total);

    /// <summary>Takes a slot for <paramref name="address"/>; release it with <see cref="Release"/>.</summary>
    public ConnectionAdmission TryAcquire(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (Interlocked.Increment(ref _total) > _maxTotal)
        {
            Interlocked.Decrement(ref _total);
            return ConnectionAdmission.TooManyConnections;
        }

        int mine = _perAddress.AddOrUpdate(address, 1, static (_, n) => n + 1);
        if (mine > _maxPerAddress)
        {
            Release(address);
            return ConnectionAdmission.TooManyFromAddress;
        }

        return ConnectionAdmission.Admitted;
    }

    /// <summary>Gives back the slot taken by a successful <see cref="TryAcquire"/>.</summary>
    public void Release(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        Interlocked.Decrement(ref _total);
        while (true)
        {
            int n = _perAddress.GetValueOrDefault(address);
            if (n <= 1)
            {
                if (_perAddress.TryRemove(new KeyValuePair<IPAddress, int>(address, n)))
                {
                    return;
                }
            }
            else if (_perAddress.TryUpdate(address, n - 1, n))
            {
                return;
            }
        }
    }
}

/// <summary>The answer of <see cref="ConnectionLimiter.TryAcquire"/>.</summary>
public enum ConnectionAdmission
{
    /// <summary>The connection may proceed.</summary>
    Admitted,

    /// <summary>The total limit is reached.</summary>
    TooManyConnections,

    /// <summary>The per-address limit is reached.</summary>
    TooManyFromAddress,
}
