using System.Net;
using System.Net.Sockets;
using System.Security.Authentication;

namespace SlimMail.Relay;

/// <summary>What happened to one recipient in an attempt.</summary>
/// <param name="Outcome">Delivered, or failed for now, or for good.</param>
/// <param name="Detail">The server's reply or the error.</param>
/// <param name="RemoteMta">The host that answered, if one did.</param>
/// <param name="Status">The enhanced status code when no server gave one (a DNS failure), else null.</param>
public readonly record struct RecipientResult(AttemptOutcome Outcome, string Detail, string? RemoteMta, string? Status = null);

/// <summary>The outcome of an attempt for one recipient.</summary>
public enum AttemptOutcome
{
    /// <summary>The server took responsibility (2xx after the data).</summary>
    Delivered,

    /// <summary>4xx, a connection failure or a timeout: try again later.</summary>
    Temporary,

    /// <summary>5xx: bounce.</summary>
    Permanent,
}

/// <summary>
/// One SMTP transaction carrying a message to every recipient of one destination: the hosts are tried in
/// order until one answers (a connection failure or a 4xx greeting moves on to the next), then EHLO (HELO
/// fallback), STARTTLS when offered (verified for a smarthost, opportunistic for MX hosts), AUTH for the
/// smarthost, MAIL with SIZE, the recipients (pipelined when offered), DATA; each recipient gets its result.
/// With a <see cref="SmtpConnectionCache"/>, the connection of a delivered message is kept for the next one to
/// that host (no new connection, greeting, EHLO, STARTTLS or AUTH), as Postfix's connection cache does.
/// </summary>
public sealed class OutboundAttempt
{
    private readonly RelayOptions _options;
    private readonly SmtpConnectionCache? _cache;

    /// <summary>
    /// Creates the attempt runner; with a <paramref name="cache"/>, a connection whose transaction ended well is
    /// kept there for the next message to the same host, and a kept one is used before a new one is opened.
    /// </summary>
    public OutboundAttempt(RelayOptions options, SmtpConnectionCache? cache = null)
    {
        _options = options;
        _cache = cache;
    }

    /// <summary>Sends <paramref name="message"/> from <paramref name="sender"/> to <paramref name="recipients"/>.</summary>
    public async Task<RecipientResult[]> SendAsync(IReadOnlyList<RemoteHost> hosts, string sender, IReadOnlyList<string> recipients,
        ReadOnlyMemory<byte> message, bool smtpUtf8, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(hosts);
        ArgumentNullException.ThrowIfNull(recipients);
        string lastError = "no host to connect to";
        foreach (RemoteHost host in hosts)
        {
            if (_cache?.TryTake(host) is { } cached)
            {
                // Null when the server had closed the kept connection before it heard anything of this message.
                if (await ConverseAsync(cached, host, reused: true, sender, recipients, message, smtpUtf8, cancellationToken).ConfigureAwait(false)
                    is { } results)
                {
                    return results;
                }
            }

            SmtpClientConnection connection;
            try
            {
                connection = await SmtpClientConnection.ConnectAsync(host.Address?.ToString() ?? host.Name, host.Port, _options.CommandTimeout,
                    _options.ImplicitTls && _options.Mode == RelayMode.Smarthost, validateCertificate: true, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is SocketException or IOException or OperationCanceledException or SmtpClientException or AuthenticationException)
            {
                cancellationToken.ThrowIfCancellationRequested();
                lastError = $"connect to {host} failed: {Describe(e)}";
                // A 5xx greeting is a refusal of this host only; the next may take the mail.
                continue;
            }

            return (await ConverseAsync(connection, host, reused: false, sender, recipients, message, smtpUtf8, cancellationToken).ConfigureAwait(false))!;
        }

        var failed = new RecipientResult[recipients.Count];
        Array.Fill(failed, new RecipientResult(AttemptOutcome.Temporary, lastError, null));
        return failed;
    }

    // One transaction on the connection, which is then kept (a clean ending) or closed. Null only for a reused
    // connection found closed at its first command.
    private async Task<RecipientResult[]?> ConverseAsync(SmtpClientConnection connection, RemoteHost host, bool reused, string sender,
        IReadOnlyList<string> recipients, ReadOnlyMemory<byte> message, bool smtpUtf8, CancellationToken cancellationToken)
    {
        RecipientResult[]? results;
        bool keep;
        try
        {
            (results, keep) = await TransactAsync(connection, host, reused, sender, recipients, message, smtpUtf8, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or IOException or OperationCanceledException or AuthenticationException)
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            cancellationToken.ThrowIfCancellationRequested();
            // Lost in the middle: nothing is known to be delivered, so everything is tried again.
            var lost = new RecipientResult[recipients.Count];
            return Fill(lost, AttemptOutcome.Temporary, $"conversation with {host} failed: {Describe(e)}", host.Name);
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        if (results is null)
        {
            await connection.DisposeAsync().ConfigureAwait(false);
        }
        else if (keep && _cache is not null)
        {
            await _cache.ReturnAsync(host, connection).ConfigureAwait(false);
        }
        else
        {
            await connection.QuitAsync().ConfigureAwait(false);
            await connection.DisposeAsync().ConfigureAwait(false);
        }

        return results;
    }

    private async Task<(RecipientResult[]? Results, bool Keep)> TransactAsync(SmtpClientConnection connection, RemoteHost host, bool reused,
        string sender, IReadOnlyList<string> recipients, ReadOnlyMemory<byte> message, bool smtpUtf8, CancellationToken cancellationToken)
    {
        var results = new RecipientResult[recipients.Count];
        bool smarthost = _options.Mode == RelayMode.Smarthost;
        try
        {
            // A kept connection has said EHLO, and started TLS and authenticated as the first transaction needed.
            if (!reused)
            {
                await connection.HelloAsync(_options.Hostname, cancellationToken).ConfigureAwait(false);
                if (!connection.IsSecure && connection.Extensions.ContainsKey("STARTTLS"))
                {
                    // The smarthost is verified against the system's trust store; MX hosts are encrypted without
                    // verification, as MTAs do (RFC 7435), since most have no certificate a client could check.
                    await connection.StartTlsAsync(host.Name, _options.Hostname, validate: smarthost, cancellationToken).ConfigureAwait(false);
                }

                if (smarthost && _options.Username is not null)
                {
                    if (!connection.IsSecure && !IsLoopback(host))
                    {
                        return (Fill(results, AttemptOutcome.Temporary, $"{host} offers no TLS; the smarthost password is not sent in plaintext", host.Name), false);
                    }

                    await connection.AuthenticateAsync(_options.Username, _options.Password ?? "", cancellationToken).ConfigureAwait(false);
                }
            }

            if (smtpUtf8 && !connection.Extensions.ContainsKey("SMTPUTF8"))
            {
                return (Fill(results, AttemptOutcome.Permanent, $"{host} does not support SMTPUTF8, which this message needs", host.Name), false);
            }

            try
            {
                await connection.MailAsync(sender, message.Length, smtpUtf8, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (reused && !cancellationToken.IsCancellationRequested
                && (e is IOException or SocketException || (e is SmtpClientException s && s.Reply.Code == 421)))
            {
                // The server closed the kept connection (or is closing it) while it waited: nothing of this message
                // was accepted, and a new connection takes it.
                return (null, false);
            }
        }
        catch (SmtpClientException e)
        {
            return (Fill(results, e.Reply.IsTransient ? AttemptOutcome.Temporary : AttemptOutcome.Permanent, e.Reply.ToString(), host.Name), false);
        }

        IReadOnlyList<SmtpClientReply> replies = await connection.RecipientsAsync(recipients, cancellationToken).ConfigureAwait(false);
        var accepted = new List<int>(recipients.Count);
        for (int i = 0; i < replies.Count; i++)
        {
            SmtpClientReply reply = replies[i];
            if (reply.Code is >= 200 and < 300)
            {
                accepted.Add(i);
            }
            else
            {
                results[i] = new RecipientResult(reply.IsTransient ? AttemptOutcome.Temporary : AttemptOutcome.Permanent, reply.ToString(), host.Name);
            }
        }

        if (accepted.Count == 0)
        {
            return (results, false);
        }

        SmtpClientReply final = await connection.DataAsync(message, cancellationToken).ConfigureAwait(false);
        AttemptOutcome outcome = final.Code is >= 200 and < 300 ? AttemptOutcome.Delivered
            : final.IsTransient ? AttemptOutcome.Temporary : AttemptOutcome.Permanent;
        foreach (int i in accepted)
        {
            results[i] = new RecipientResult(outcome, final.ToString(), host.Name);
        }

        // Only a delivered message leaves the connection in a state worth keeping; anything else ends with QUIT.
        return (results, outcome == AttemptOutcome.Delivered);
    }

    private static RecipientResult[] Fill(RecipientResult[] results, AttemptOutcome outcome, string detail, string host)
    {
        Array.Fill(results, new RecipientResult(outcome, detail, host));
        return results;
    }

    private static bool IsLoopback(RemoteHost host) =>
        (host.Address is { } address && IPAddress.IsLoopback(address)) || host.Name is "localhost";

    private static string Describe(Exception e) => e switch
    {
        SmtpClientException s => s.Reply.ToString(),
        OperationCanceledException => "timed out",
        _ => e.Message,
    };
}
