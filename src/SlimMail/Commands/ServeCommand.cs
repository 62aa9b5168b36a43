using System.Net.Sockets;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;
using SlimMail.Host.Configuration;
using SlimMail.Host.Hosting;
using SlimMail.Host.Logging;

namespace SlimMail.Host.Commands;

/// <summary><c>slimmail serve</c>: runs the listeners until SIGINT/SIGTERM, then drains.</summary>
internal static partial class ServeCommand
{
    private const string InlineCompletions = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";

    /// <summary>
    /// Socket continuations run on the socket engine's threads (one per core) instead of being handed to the
    /// thread pool: a command's reply then costs one thread wake-up instead of two, which on a virtual machine is
    /// most of a round trip's cost (docs/benchmarks.md: SMTP +11% messages/s, POP3 RETR ping-pong 0.89x -> 1.10x
    /// of Dovecot). What blocks or burns CPU (fsync, password hashes, maildrop listings, process starts) is handed
    /// to the disk threads or the pool by the code that does it. The runtime reads the variable once, at the first
    /// socket operation, so it is set before any; an explicit value in the environment wins (0 turns it off).
    /// </summary>
    private static void UseInlineSocketCompletions()
    {
        if (Environment.GetEnvironmentVariable(InlineCompletions) is null)
        {
            Environment.SetEnvironmentVariable(InlineCompletions, "1");
        }
    }

    public static async Task<int> RunAsync(string? configFile, IReadOnlyList<string> overrides)
    {
        UseInlineSocketCompletions();
        (SlimMailSettings? settings, IConfigurationRoot? raw) = ConfigurationLoader.Load(configFile, overrides, Console.Error);
        if (settings is null || raw is null)
        {
            return ExitCodes.UserError;
        }

        var builder = new HostApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Logging:LogLevel:Default"] = "Information",
            ["Logging:LogLevel:Microsoft"] = "Warning",
            ["Logging:Console:FormatterName"] = "simple",
        });
        builder.Configuration.AddConfiguration(raw);
        builder.Logging.AddConfiguration(builder.Configuration.GetSection("Logging"));
        // The stock console logger's formatters and options, written in batches (BatchingConsoleLoggerProvider).
        builder.Logging.AddConsole();
        builder.Services.Remove(builder.Services.Single(d => d.ImplementationType == typeof(ConsoleLoggerProvider)));
        builder.Services.AddSingleton<ILoggerProvider, BatchingConsoleLoggerProvider>();
        builder.Services.Configure<SimpleConsoleFormatterOptions>(o =>
        {
            o.SingleLine = true;
            o.UseUtcTimestamp = true;
            o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ ";
            o.IncludeScopes = true;
        });
        builder.Services.Configure<JsonConsoleFormatterOptions>(o =>
        {
            o.UseUtcTimestamp = true;
            o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ";
            o.IncludeScopes = true;
        });
        builder.Services.Configure<ConsoleLifetimeOptions>(o => o.SuppressStatusMessages = true);
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = settings.ShutdownTimeout + TimeSpan.FromSeconds(10));
        builder.Services.AddSingleton(settings);
        builder.Services.AddSingleton<SecurityWiring>();
        builder.Services.AddSingleton<RelayWiring>();
        builder.Services.AddSingleton<LiveConfiguration>();
        builder.Services.AddSingleton<ListenerRegistry>();
        builder.Services.AddSingleton(new ConfigurationReloader.Source(configFile, overrides));
        builder.Services.AddHostedService<RelayHostedService>();
        builder.Services.AddHostedService<SmtpHostedService>();
        builder.Services.AddHostedService<Pop3HostedService>();
        builder.Services.AddHostedService<MetricsHostedService>();
        builder.Services.AddHostedService<ConfigurationReloader>();
        builder.Services.AddSingleton(_ => SystemdNotifier.FromEnvironment());
        builder.Services.AddHostedService<SystemdService>();

        using IHost host = builder.Build();
        ILogger logger = host.Services.GetRequiredService<ILoggerFactory>().CreateLogger("SlimMail");
        try
        {
            Directory.CreateDirectory(settings.DataDirectory);
            if (settings.ZeroConfig)
            {
                string passwordFile = LocalPassword.Ensure(settings.DataDirectory);
                LogZeroConfig(logger, Path.GetFullPath(settings.DataDirectory), passwordFile);
            }
            else
            {
                LogConfigured(logger, settings.ConfigFile, Path.GetFullPath(settings.DataDirectory));
            }

            using var pidFile = new PidFile(settings.PidFile);
            await host.RunAsync().ConfigureAwait(false);
            return ExitCodes.Success;
        }
        catch (SocketException e)
        {
            LogCannotStart(logger, e.Message);
            return ExitCodes.RuntimeFailure;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            LogCannotStart(logger, e.Message);
            return ExitCodes.RuntimeFailure;
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "zero-configuration mode: no configuration file found; data in {DataDirectory}; user local's password is in {PasswordFile}")]
    private static partial void LogZeroConfig(ILogger logger, string dataDirectory, string passwordFile);

    [LoggerMessage(Level = LogLevel.Information, Message = "configuration {ConfigFile}; data in {DataDirectory}")]
    private static partial void LogConfigured(ILogger logger, string? configFile, string dataDirectory);

    [LoggerMessage(Level = LogLevel.Critical, Message = "cannot start: {Error}")]
    private static partial void LogCannotStart(ILogger logger, string error);
}
