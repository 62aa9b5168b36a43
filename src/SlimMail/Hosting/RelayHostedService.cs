using System.Text;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using SlimMail.Delivery;
using SlimMail.Host.Configuration;
using SlimMail.Relay;
using SlimMail.Relay.Queue;
using SlimMail.Smtp;

namespace SlimMail.Host.Hosting;

/// <summary>Runs the outbound scheduler when a relay is configured; bounces go back through the live handler.</summary>
internal sealed partial class RelayHostedService : IHostedService, IAsyncDisposable
{
    private readonly SlimMailSettings _settings;
    private readonly RelayWiring _relay;
    private readonly LiveConfiguration _live;
    private readonly ILogger _logger;
    private RelayScheduler? _scheduler;

    public RelayHostedService(SlimMailSettings settings, RelayWiring relay, LiveConfiguration live, ILoggerFactory loggerFactory)
    {
        _settings = settings;
        _relay = relay;
        _live = live;
        _logger = loggerFactory.CreateLogger("SlimMail.Relay");
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (_relay.Queue is not { } queue)
        {
            return Task.CompletedTask;
        }

        RelayOptions options = _settings.Relay!;
        IDestinationResolver resolver = options.Mode == RelayMode.Mx
            ? new MxResolver(new Relay.Dns.DnsResolver(options.DnsServers), options.MxPort)
            : new SmarthostResolver(options.Smarthost!);
        _scheduler = new RelayScheduler(queue, options, resolver, BounceAsync, _logger);
        _relay.Scheduler = _scheduler;
        _scheduler.Start();
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_scheduler is not null)
        {
            await _scheduler.StopAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_scheduler is not null)
        {
            await _scheduler.DisposeAsync().ConfigureAwait(false);
        }
    }

    // The notification carries the original headers and goes out with the null sender, so it never bounces.
    private async Task BounceAsync(QueueEnvelope envelope, IReadOnlyList<DsnRecipient> failed, CancellationToken cancellationToken)
    {
        byte[] body = _relay.Queue!.ReadBody(envelope);
        byte[] report = DeliveryStatusNotification.Build(_settings.Hostname, envelope.Sender, envelope.Id, envelope.Arrival, failed,
            DeliveryStatusNotification.HeaderSection(body));
        SmtpReply reply = await InternalSubmission.SubmitAsync(_live, null, envelope.Sender, report, cancellationToken).ConfigureAwait(false);
        if (!reply.IsPositive)
        {
            LogBounceRefused(_logger, envelope.Id, envelope.Sender, reply.ToString());
            if (reply.Code < 500)
            {
                throw new IOException("the delivery-status notification could not be delivered yet: " + reply);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "{QueueId}: the delivery-status notification to <{Sender}> was refused: {Reply}")]
    private static partial void LogBounceRefused(ILogger logger, string queueId, string sender, string reply);
}
