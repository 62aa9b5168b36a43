using Microsoft.Extensions.Logging;
using SlimMail.Delivery;
using SlimMail.Relay.Queue;

namespace SlimMail.Relay;

/// <summary>
/// Works the outbound queue: each message's pending recipients are grouped by destination and sent in one
/// transaction per destination; each recipient's state is written durably right after the attempt; temporary
/// failures are retried after growing delays until <see cref="RelayOptions.MaxQueueTime"/>; permanent
/// failures and expired recipients are reported to the sender in one delivery-status notification. The
/// loop sleeps until the next retry is due and wakes at once when a message is queued or a flush is asked.
/// </summary>
public sealed partial class RelayScheduler : IAsyncDisposable
{
    private readonly OutboundQueue _queue;
    private readonly RelayOptions _options;
    private readonly IDestinationResolver _resolver;
    private readonly OutboundAttempt _attempt;
    private readonly SmtpConnectionCache _connections;
    private readonly Func<QueueEnvelope, IReadOnlyList<DsnRecipient>, CancellationToken, Task> _bounce;
    private readonly ILogger _logger;
    private readonly Dictionary<string, QueueEnvelope> _envelopes = new(StringComparer.Ordinal);
    private readonly HashSet<string> _inFlight = new(StringComparer.Ordinal);
    private readonly AttemptSchedule _schedule = new(); // guarded by _envelopes' lock, as _inFlight
    private readonly Dictionary<string, int> _perDestination = new(StringComparer.OrdinalIgnoreCase);
    private readonly SemaphoreSlim _wake = new(0);
    private readonly SemaphoreSlim _slots;
    private readonly CancellationTokenSource _stopping = new();
    private readonly List<Task> _running = [];
    private FileSystemWatcher? _flushWatcher;
    private Task? _loop;

    /// <summary>Creates the scheduler.</summary>
    /// <param name="queue">The queue it works.</param>
    /// <param name="options">Retries, limits, smarthost.</param>
    /// <param name="resolver">Finds the hosts of a destination.</param>
    /// <param name="bounce">Sends a delivery-status notification about <c>QueueEnvelope</c> to its sender.</param>
    /// <param name="logger">One line per attempt outcome.</param>
    public RelayScheduler(OutboundQueue queue, RelayOptions options, IDestinationResolver resolver,
        Func<QueueEnvelope, IReadOnlyList<DsnRecipient>, CancellationToken, Task> bounce, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(queue);
        ArgumentNullException.ThrowIfNull(options);
        _queue = queue;
        _options = options;
        _resolver = resolver;
        _connections = new SmtpConnectionCache(options.MaxConcurrentPerDestination, options.MaxConcurrentDeliveries);
        _attempt = new OutboundAttempt(options, _connections);
        _bounce = bounce;
        _logger = logger;
        _slots = new SemaphoreSlim(options.MaxConcurrentDeliveries);
    }

    /// <summary>Messages in the queue.</summary>
    public int Count
    {
        get
        {
            lock (_envelopes)
            {
                return _envelopes.Count;
            }
        }
    }

    /// <summary>The age of the oldest queued message.</summary>
    public TimeSpan OldestAge
    {
        get
        {
            lock (_envelopes)
            {
                DateTimeOffset now = DateTimeOffset.UtcNow;
                return _envelopes.Count == 0 ? TimeSpan.Zero : now - _envelopes.Values.Min(e => e.Arrival);
            }
        }
    }

    /// <summary>Loads the queue left by the previous run and starts working it.</summary>
    public void Start()
    {
        lock (_envelopes)
        {
            foreach (QueueEnvelope envelope in _queue.LoadAll())
            {
                _envelopes[envelope.Id] = envelope;
                Reschedule(envelope);
            }
        }

        _queue.Queued += OnQueued;
        File.Delete(_queue.FlushRequestPath);
        _flushWatcher = new FileSystemWatcher(_queue.ControlDirectory, "flush") { NotifyFilter = NotifyFilters.FileName | NotifyFilters.LastWrite };
        _flushWatcher.Created += (_, _) => Flush();
        _flushWatcher.Changed += (_, _) => Flush();
        _flushWatcher.EnableRaisingEvents = true;
        LogStarted(_logger, _envelopes.Count, _options.Mode.ToString());
        _loop = Task.Run(RunAsync);
    }

    /// <summary>Makes every pending recipient due now (<c>slimmail queue flush</c>).</summary>
    public void Flush()
    {
        lock (_envelopes)
        {
            foreach (QueueEnvelope envelope in _envelopes.Values)
            {
                foreach (QueueRecipient recipient in envelope.Recipients)
                {
                    recipient.NextAttempt = DateTimeOffset.MinValue;
                }

                Reschedule(envelope);
            }
        }

        _wake.Release();
    }

    /// <summary>Stops starting attempts and waits for those in flight (their state is saved as they end).</summary>
    public async Task StopAsync(TimeSpan timeout)
    {
        _queue.Queued -= OnQueued;
        _flushWatcher?.Dispose();
        await _stopping.CancelAsync().ConfigureAwait(false);
        if (_loop is not null)
        {
            await _loop.ConfigureAwait(false);
        }

        Task[] running;
        lock (_running)
        {
            running = [.. _running];
        }

        await Task.WhenAny(Task.WhenAll(running), Task.Delay(timeout)).ConfigureAwait(false);
        await _connections.DisposeAsync().ConfigureAwait(false); // QUIT to every kept connection
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (!_stopping.IsCancellationRequested)
        {
            await StopAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
        }

        _stopping.Dispose();
        _wake.Dispose();
        _slots.Dispose();
    }

    private void OnQueued(QueueEnvelope envelope)
    {
        lock (_envelopes)
        {
            _envelopes[envelope.Id] = envelope;
            Reschedule(envelope);
        }

        _wake.Release();
    }

    private async Task RunAsync()
    {
        CancellationToken stopping = _stopping.Token;
        while (!stopping.IsCancellationRequested)
        {
            TimeSpan sleep = StartDueAttempts();
            try
            {
                await _wake.WaitAsync(sleep, stopping).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    // Starts an attempt for every message with a due recipient that is not already being worked; returns how
    // long to sleep until the next one is due.
    private TimeSpan StartDueAttempts()
    {
        DateTimeOffset now = DateTimeOffset.UtcNow;
        var due = new List<QueueEnvelope>();
        DateTimeOffset? next;
        lock (_envelopes)
        {
            while (_schedule.TryTakeDue(now, out string? id))
            {
                // A message being worked gets its next time when the attempt ends.
                if (_envelopes.TryGetValue(id, out QueueEnvelope? envelope) && _inFlight.Add(id))
                {
                    due.Add(envelope);
                }
            }

            next = _schedule.Next;
        }

        foreach (QueueEnvelope envelope in due)
        {
            Task work = Task.Run(() => WorkAsync(envelope));
            lock (_running)
            {
                _running.Add(work);
                _running.RemoveAll(t => t.IsCompleted);
            }
        }

        TimeSpan sleep = (next ?? now + TimeSpan.FromHours(1)) - DateTimeOffset.UtcNow;
        return sleep < TimeSpan.FromMilliseconds(10) ? TimeSpan.FromMilliseconds(10)
            : sleep > TimeSpan.FromHours(1) ? TimeSpan.FromHours(1) : sleep;
    }

    // Gives a queued message its next time: now when a bounce is owed, else its earliest pending recipient's next
    // attempt; none when nothing is left to do. Called under _envelopes' lock whenever those times may have changed.
    private void Reschedule(QueueEnvelope envelope)
    {
        DateTimeOffset due = DateTimeOffset.MaxValue;
        foreach (QueueRecipient recipient in envelope.Recipients)
        {
            if (recipient.NeedsBounce)
            {
                due = DateTimeOffset.MinValue;
                break;
            }

            if (recipient.State == RecipientState.Pending && recipient.NextAttempt < due)
            {
                due = recipient.NextAttempt;
            }
        }

        if (due != DateTimeOffset.MaxValue)
        {
            _schedule.Schedule(envelope.Id, due);
        }
    }

    private async Task WorkAsync(QueueEnvelope envelope)
    {
        try
        {
            await DeliverAsync(envelope, _stopping.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
            // Stopping: the recipients stay pending and are tried after the restart.
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException)
        {
            LogWorkFailed(_logger, envelope.Id, e.Message);
            lock (_envelopes)
            {
                foreach (QueueRecipient recipient in envelope.Recipients)
                {
                    recipient.NextAttempt = DateTimeOffset.UtcNow + TimeSpan.FromMinutes(1);
                }
            }
        }
        finally
        {
            lock (_envelopes)
            {
                _inFlight.Remove(envelope.Id);
                if (_envelopes.ContainsKey(envelope.Id))
                {
                    Reschedule(envelope);
                }
            }

            _wake.Release();
        }
    }

    private async Task DeliverAsync(QueueEnvelope envelope, CancellationToken cancellationToken)
    {
        if (!_queue.Contains(envelope.Id))
        {
            Forget(envelope.Id); // deleted by the administrator
            return;
        }

        DateTimeOffset now = DateTimeOffset.UtcNow;
        bool expired = now - envelope.Arrival > _options.MaxQueueTime;
        var groups = new Dictionary<string, List<QueueRecipient>>(StringComparer.OrdinalIgnoreCase);
        foreach (QueueRecipient recipient in envelope.Recipients)
        {
            if (recipient.State != RecipientState.Pending)
            {
                continue;
            }

            if (expired)
            {
                recipient.State = RecipientState.Failed;
                recipient.Status = "4.4.7";
                recipient.LastError = $"delivery time expired after {_options.MaxQueueTime}; last error: {recipient.LastError ?? "none"}";
                LogAttempt(_logger, envelope.Id, recipient.Address, "expired", recipient.RemoteMta ?? "-", recipient.Attempts, recipient.LastError);
                continue;
            }

            if (recipient.NextAttempt > now)
            {
                continue;
            }

            string key = _resolver.KeyOf(DomainOf(recipient.Address));
            if (!groups.TryGetValue(key, out List<QueueRecipient>? group))
            {
                groups[key] = group = [];
            }

            group.Add(recipient);
        }

        if (groups.Count > 0)
        {
            byte[] body = _queue.ReadBody(envelope);
            foreach ((string key, List<QueueRecipient> group) in groups)
            {
                if (!await TryEnterDestinationAsync(key, cancellationToken).ConfigureAwait(false))
                {
                    continue;
                }

                try
                {
                    await AttemptAsync(envelope, group, body, cancellationToken).ConfigureAwait(false);
                }
                finally
                {
                    LeaveDestination(key);
                }

                // The state after every attempt is durable before anything else happens: a crash now
                // never sends again to a recipient that a server already accepted. When nothing is left
                // to do, removing the envelope below is that durable record, so it is not written first.
                if (!envelope.IsFinished && !await SaveAsync(envelope).ConfigureAwait(false))
                {
                    Forget(envelope.Id);
                    return;
                }
            }
        }

        // Failures are saved before the notification is sent, and marked notified after: a crash in between
        // sends the notification again rather than never.
        List<QueueRecipient> toBounce = envelope.Recipients.FindAll(r => r.NeedsBounce);
        if (toBounce.Count > 0)
        {
            if (!await SaveAsync(envelope).ConfigureAwait(false))
            {
                Forget(envelope.Id);
                return;
            }

            if (envelope.Sender.Length > 0)
            {
                await _bounce(envelope, toBounce.ConvertAll(r => new DsnRecipient(r.Address, "failed", r.Status ?? "5.0.0", r.LastError, r.RemoteMta)),
                    cancellationToken).ConfigureAwait(false);
                LogBounced(_logger, envelope.Id, envelope.Sender, toBounce.Count);
            }
            else
            {
                LogNoBounceForBounce(_logger, envelope.Id);
            }

            toBounce.ForEach(r => r.Notified = true);
        }

        // One "still trying" notice when the message has waited longer than DelayWarningTime (Postfix's delay_warning_time).
        if (_options.DelayWarningTime is { } warnAfter && !envelope.DelayWarned && envelope.Sender.Length > 0
            && DateTimeOffset.UtcNow - envelope.Arrival >= warnAfter && envelope.Recipients.Exists(r => r.State == RecipientState.Pending))
        {
            List<DsnRecipient> delayed = envelope.Recipients.FindAll(r => r.State == RecipientState.Pending)
                .ConvertAll(r => new DsnRecipient(r.Address, "delayed", StatusOf(r.LastError ?? "", "4.0.0"), r.LastError, r.RemoteMta));
            await _bounce(envelope, delayed, cancellationToken).ConfigureAwait(false);
            envelope.DelayWarned = true;
            await SaveAsync(envelope).ConfigureAwait(false);
            LogDelayWarning(_logger, envelope.Id, envelope.Sender, delayed.Count);
        }

        if (envelope.IsFinished)
        {
            await BlockingIo.RunAsync(() => _queue.Remove(envelope.Id), fromSession: false).ConfigureAwait(false);
            Forget(envelope.Id);
            LogFinished(_logger, envelope.Id);
        }
        else if (toBounce.Count > 0)
        {
            await SaveAsync(envelope).ConfigureAwait(false);
        }
    }

    // The envelope's rewrite and its directory fsync block: after an attempt this code runs on a socket thread
    // (inline completions), which must not wait for the disk.
    private async Task<bool> SaveAsync(QueueEnvelope envelope)
    {
        bool saved = false;
        await BlockingIo.RunAsync(() => saved = _queue.Save(envelope), fromSession: false).ConfigureAwait(false);
        return saved;
    }

    private async Task AttemptAsync(QueueEnvelope envelope, List<QueueRecipient> group, byte[] body, CancellationToken cancellationToken)
    {
        string domain = DomainOf(group[0].Address);
        Destination destination = await _resolver.ResolveAsync(domain, cancellationToken).ConfigureAwait(false);
        RecipientResult[] results;
        if (destination.Hosts.Count == 0)
        {
            var result = new RecipientResult(destination.Permanent ? AttemptOutcome.Permanent : AttemptOutcome.Temporary,
                destination.Error ?? "no host", null, destination.Status);
            results = [.. group.Select(_ => result)];
        }
        else
        {
            results = await _attempt.SendAsync(destination.Hosts, envelope.Sender, group.ConvertAll(r => r.Address), body, envelope.SmtpUtf8, cancellationToken)
                .ConfigureAwait(false);
        }

        for (int i = 0; i < group.Count; i++)
        {
            QueueRecipient recipient = group[i];
            RecipientResult result = results[i];
            recipient.Attempts++;
            recipient.LastError = result.Outcome == AttemptOutcome.Delivered ? null : result.Detail;
            recipient.RemoteMta = result.RemoteMta;
            string outcome;
            switch (result.Outcome)
            {
                case AttemptOutcome.Delivered:
                    recipient.State = RecipientState.Delivered;
                    outcome = "delivered";
                    break;
                case AttemptOutcome.Permanent:
                    recipient.State = RecipientState.Failed;
                    recipient.Status = result.Status ?? StatusOf(result.Detail, "5.0.0");
                    outcome = "bounced";
                    break;
                default:
                    recipient.NextAttempt = DateTimeOffset.UtcNow + RetryPolicy.DelayAfter(recipient.Attempts, _options.RetryDelays);
                    outcome = "deferred";
                    break;
            }

            SlimMailMetrics.Deliveries.Add(1, new KeyValuePair<string, object?>("type", "relay"), new KeyValuePair<string, object?>("outcome", outcome));
            LogAttempt(_logger, envelope.Id, recipient.Address, outcome, result.RemoteMta ?? "-", recipient.Attempts, result.Detail);
        }
    }

    private async Task<bool> TryEnterDestinationAsync(string key, CancellationToken cancellationToken)
    {
        await _slots.WaitAsync(cancellationToken).ConfigureAwait(false);
        lock (_perDestination)
        {
            int running = _perDestination.GetValueOrDefault(key);
            if (running < _options.MaxConcurrentPerDestination)
            {
                _perDestination[key] = running + 1;
                return true;
            }
        }

        // This destination is busy: the recipients stay due and are picked up when a slot frees.
        _slots.Release();
        return false;
    }

    private void LeaveDestination(string key)
    {
        lock (_perDestination)
        {
            _perDestination[key]--;
        }

        _slots.Release();
    }

    private void Forget(string id)
    {
        lock (_envelopes)
        {
            _envelopes.Remove(id);
            _schedule.Remove(id);
        }
    }

    private static string DomainOf(string address)
    {
        int at = address.LastIndexOf('@');
        return at < 0 ? "" : address[(at + 1)..];
    }

    // The enhanced status code of a server's reply ("550 5.1.1 ..."), or the class default.
    private static string StatusOf(string detail, string fallback)
    {
        int space = detail.IndexOf(' ', StringComparison.Ordinal);
        if (space > 0 && detail.Length > space + 5)
        {
            string candidate = detail.Substring(space + 1, Math.Min(9, detail.Length - space - 1)).Split(' ')[0];
            string[] parts = candidate.Split('.');
            if (parts.Length == 3 && parts[0] is "4" or "5" && parts.All(p => p.Length is > 0 and <= 3 && p.All(char.IsAsciiDigit)))
            {
                return candidate;
            }
        }

        return fallback;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "relay: {Count} message(s) in the queue; mode {Mode}")]
    private static partial void LogStarted(ILogger logger, int count, string mode);

    [LoggerMessage(Level = LogLevel.Information, Message = "{QueueId}: to=<{Recipient}> {Outcome} via {Relay} attempt={Attempt}: {Detail}")]
    private static partial void LogAttempt(ILogger logger, string queueId, string recipient, string outcome, string relay, int attempt, string detail);

    [LoggerMessage(Level = LogLevel.Information, Message = "{QueueId}: bounce to <{Sender}> for {Count} recipient(s)")]
    private static partial void LogBounced(ILogger logger, string queueId, string sender, int count);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{QueueId}: undeliverable bounce (null sender): dropped, as a bounce never bounces")]
    private static partial void LogNoBounceForBounce(ILogger logger, string queueId);

    [LoggerMessage(Level = LogLevel.Information, Message = "{QueueId}: delay warning to <{Sender}> for {Count} recipient(s)")]
    private static partial void LogDelayWarning(ILogger logger, string queueId, string sender, int count);

    [LoggerMessage(Level = LogLevel.Information, Message = "{QueueId}: removed from the queue")]
    private static partial void LogFinished(ILogger logger, string queueId);

    [LoggerMessage(Level = LogLevel.Error, Message = "{QueueId}: delivery attempt failed, retrying in a minute: {Error}")]
    private static partial void LogWorkFailed(ILogger logger, string queueId, string error);
}
