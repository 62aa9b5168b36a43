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
/// </summary>
public sealed class OutboundAttempt
{
    private readonly RelayOptions _options;

    /// <summary>Creates the attempt runner.</summary>
    public OutboundAttempt(RelayOptions options) => _options = options;

    /// <summary>Sends <paramref name="message"/> from <paramref name="sender"/> to <paramref name="recipients"/>.</summary>
    public async Task<RecipientResult[]> SendAsync(IReadOnlyList<RemoteHost> hosts, string sender, IReadOnlyList<string> recipients,
        ReadOnlyMemory<byte> message, bool smtpUtf8, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(hosts);
        ArgumentNullException.ThrowIfNull(recipients);
        var results = new RecipientResult[recipients.Count];
        string lastError = "no host to connect to";
        foreach (RemoteHost host in hosts)
        {
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

            await using (connection.ConfigureAwait(false))
            {
                try
                {
                    return await TransactAsync(connection, host, sender, recipients, message, smtpUtf8, cancellationToken).ConfigureAwait(false);
                }
                catch (Exception e) when (e is SocketException or IOException or OperationCanceledException or AuthenticationException)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    // Lost in the middle: nothing is known to be delivered, so everything is tried again.
                    Array.Fill(results, new RecipientResult(AttemptOutcome.Temporary, $"conversation with {host} failed: {Describe(e)}", host.Name));
                    return results;
                }
            }
        }

        Array.Fill(results, new RecipientResult(AttemptOutcome.Temporary, lastError, null));
        return results;
    }

    private async Task<RecipientResult[]> TransactAsync(SmtpClientConnection connection, RemoteHost host, string sender, IReadOnlyList<string> recipients,
        ReadOnlyMemory<byte> message, bool smtpUtf8, CancellationToken cancellationToken)
    {
        var results = new RecipientResult[recipients.Count];
        bool smarthost = _options.Mode == RelayMode.Smarthost;
        try
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
                    return Fill(results, AttemptOutcome.Temporary, $"{host} offers no TLS; the smarthost password is not sent in plaintext", host.Name);
                }

                await connection.AuthenticateAsync(_options.Username, _options.Password ?? "", cancellationToken).ConfigureAwait(false);
            }

            if (smtpUtf8 && !connection.Extensions.ContainsKey("SMTPUTF8"))
            {
                return Fill(results, AttemptOutcome.Permanent, $"{host} does not support SMTPUTF8, which this message needs", host.Name);
            }

            await connection.MailAsync(sender, message.Length, smtpUtf8, cancellationToken).ConfigureAwait(false);
        }
        catch (SmtpClientException e)
        {
            await connection.QuitAsync().ConfigureAwait(false);
            return Fill(results, e.Reply.IsTransient ? AttemptOutcome.Temporary : AttemptOutcome.Permanent, e.Reply.ToString(), host.Name);
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
            await connection.QuitAsync().ConfigureAwait(false);
            return results;
        }

        SmtpClientReply final = await connection.DataAsync(message, cancellationToken).ConfigureAwait(false);
        AttemptOutcome outcome = final.Code is >= 200 and < 300 ? AttemptOutcome.Delivered
            : final.IsTransient ? AttemptOutcome.Temporary : AttemptOutcome.Permanent;
        foreach (int i in accepted)
        {
            results[i] = new RecipientResult(outcome, final.ToString(), host.Name);
        }

        await connection.QuitAsync().ConfigureAwait(false);
        return results;
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
