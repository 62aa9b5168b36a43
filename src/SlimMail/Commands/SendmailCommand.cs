using System.Net;
using Microsoft.Extensions.Configuration;
using SlimMail.Host.Configuration;
using SlimMail.Relay;

namespace SlimMail.Host.Commands;

/// <summary>
/// <c>slimmail sendmail</c>: the sendmail interface cron, mdadm, smartd and PHP's <c>mail()</c> use. Reads a
/// message on stdin and submits it over SMTP to <c>Sendmail.Server</c> (normally a Local listener).
/// Exit codes as sendmail's: 0 accepted, 64 bad usage, 69 refused (5xx), 75 try again later (unreachable, 4xx).
/// </summary>
internal static class SendmailCommand
{
    public const int ExUsage = 64;
    public const int ExUnavailable = 69;
    public const int ExTempFail = 75;

    public static async Task<int> RunAsync(IReadOnlyList<string> args, TextReader stdin)
    {
        string? configFile = null;
        string? from = null;
        string? fullName = null;
        bool readRecipients = false;
        bool ignoreDots = false;
        var recipients = new List<string>();
        for (int i = 0; i < args.Count; i++)
        {
            string arg = args[i];
            string? Next() => i + 1 < args.Count ? args[++i] : null;
            switch (arg)
            {
                case "--config" or "-C":
                    configFile = Next();
                    break;
                case "-t":
                    readRecipients = true;
                    break;
                case "-i" or "-oi":
                    ignoreDots = true;
                    break;
                case "-f" or "-r":
                    from = Next();
                    break;
                case "-F":
                    fullName = Next();
                    break;
                case "--":
                    recipients.AddRange(args.Skip(i + 1));
                    i = args.Count;
                    break;
                default:
                    if (arg.StartsWith("-f", StringComparison.Ordinal) && arg.Length > 2)
                    {
                        from = arg[2..];
                    }
                    else if (arg.StartsWith("-F", StringComparison.Ordinal) && arg.Length > 2)
                    {
                        fullName = arg[2..];
                    }
                    else if (arg.StartsWith("-o", StringComparison.Ordinal) || arg.StartsWith("-B", StringComparison.Ordinal)
                             || arg is "-m" or "-v" or "-U" or "-bm" or "-em" or "-ee" or "-odi" or "-odb")
                    {
                        // Accepted and ignored, as Postfix's sendmail does for options that do not apply.
                    }
                    else if (arg.StartsWith('-'))
                    {
                        Console.Error.WriteLine($"sendmail: unknown option {arg}");
                        return ExUsage;
                    }
                    else
                    {
                        recipients.AddRange(arg.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
                    }

                    break;
            }
        }

        if (from is null && args.Contains("-f"))
        {
            Console.Error.WriteLine("sendmail: -f needs an address");
            return ExUsage;
        }

        IConfigurationRoot config;
        try
        {
            config = ConfigurationSources.Build(ConfigurationSources.FindConfigFile(configFile), []);
        }
        catch (Exception e) when (e is IOException or InvalidDataException or FormatException or System.Text.Json.JsonException)
        {
            Console.Error.WriteLine($"sendmail: cannot read the configuration: {e.Message}");
            return ExTempFail;
        }

        string hostname = config["Hostname"] is { Length: > 0 } h ? h : Dns.GetHostName();
        string sender = string.IsNullOrEmpty(from) ? from is null ? Environment.UserName + "@" + hostname : "" : from;
        SendmailMessage message = SendmailMessage.Read(stdin, ignoreDots, readRecipients, sender.Length == 0 ? "MAILER-DAEMON@" + hostname : sender, fullName, hostname);
        recipients.AddRange(message.HeaderRecipients);
        if (recipients.Count == 0)
        {
            Console.Error.WriteLine("sendmail: no recipients");
            return ExUsage;
        }

        if (!EndpointParser.TryParse(ServerOf(config), out IPEndPoint? server))
        {
            Console.Error.WriteLine($"sendmail: Sendmail:Server '{ServerOf(config)}' is not host:port");
            return ExUsage;
        }

        return await SubmitAsync(server, config["Sendmail:Username"], config["Sendmail:Password"], hostname, sender, recipients.Distinct(StringComparer.OrdinalIgnoreCase).ToList(), message.Data).ConfigureAwait(false);
    }

    // Sendmail.Server, else the first Local listener, else 127.0.0.1:25; zero-configuration's listener is 127.0.0.1:2525.
    private static string ServerOf(IConfiguration config)
    {
        if (config["Sendmail:Server"] is { Length: > 0 } server)
        {
            return server;
        }

        foreach (IConfigurationSection listener in config.GetSection("Smtp:Listeners").GetChildren())
        {
            if (string.Equals(listener["Role"], "Local", StringComparison.OrdinalIgnoreCase) && listener["Endpoint"] is { } endpoint)
            {
                return endpoint;
            }
        }

        return "127.0.0.1:25";
    }

    private static async Task<int> SubmitAsync(IPEndPoint server, string? user, string? password, string hostname, string sender,
        IReadOnlyList<string> recipients, byte[] data)
    {
        SmtpClientConnection smtp;
        try
        {
            smtp = await SmtpClientConnection.ConnectAsync(server.Address.ToString(), server.Port, TimeSpan.FromSeconds(60)).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or OperationCanceledException or SmtpClientException)
        {
            Console.Error.WriteLine($"sendmail: cannot reach {server}: {e.Message}");
            return ExTempFail;
        }

        await using (smtp.ConfigureAwait(false))
        {
            try
            {
                await smtp.HelloAsync(hostname).ConfigureAwait(false);
                if (!string.IsNullOrEmpty(user))
                {
                    await smtp.AuthenticateAsync(user, password ?? "").ConfigureAwait(false);
                }

                await smtp.MailAsync(sender).ConfigureAwait(false);
                int accepted = 0;
                SmtpClientReply? lastRefusal = null;
                foreach (string recipient in recipients)
                {
                    SmtpClientReply reply = await smtp.RecipientAsync(recipient).ConfigureAwait(false);
                    if (reply.IsPositive)
                    {
                        accepted++;
                    }
                    else
                    {
                        lastRefusal = reply;
                        Console.Error.WriteLine($"sendmail: {recipient}: {reply}");
                    }
                }

                if (accepted == 0)
                {
                    await smtp.QuitAsync().ConfigureAwait(false);
                    return lastRefusal!.IsTransient ? ExTempFail : ExUnavailable;
                }

                SmtpClientReply end = await smtp.DataAsync(data).ConfigureAwait(false);
                await smtp.QuitAsync().ConfigureAwait(false);
                if (!end.IsPositive)
                {
                    Console.Error.WriteLine($"sendmail: message refused: {end}");
                    return end.IsTransient ? ExTempFail : ExUnavailable;
                }

                // Like sendmail, refused recipients are reported but the message went to the others.
                return lastRefusal is null ? 0 : lastRefusal.IsTransient ? ExTempFail : ExUnavailable;
            }
            catch (SmtpClientException e)
            {
                Console.Error.WriteLine($"sendmail: {e.Reply}");
                return e.Reply.IsTransient ? ExTempFail : ExUnavailable;
            }
            catch (Exception e) when (e is IOException or OperationCanceledException)
            {
                Console.Error.WriteLine($"sendmail: {e.Message}");
                return ExTempFail;
            }
        }
    }
}
