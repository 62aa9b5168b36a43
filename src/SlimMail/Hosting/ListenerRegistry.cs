using System.Collections.Concurrent;

namespace SlimMail.Host.Hosting;

/// <summary>The listeners actually bound (port 0 resolved), as the hosted services report them; for status lines.</summary>
internal sealed class ListenerRegistry
{
    private readonly ConcurrentQueue<string> _listeners = new();

    public void Add(string description) => _listeners.Enqueue(description);

    public IReadOnlyCollection<string> All => _listeners;
}
