using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using SlimMail.Delivery;
using SlimMail.Hosting;
using SlimMail.Smtp;

// The extension lives in the container's namespace, as the framework's own AddXxx methods do.
#pragma warning disable IDE0130
namespace Microsoft.Extensions.DependencyInjection;
#pragma warning restore IDE0130

/// <summary>Registers a SlimMail SMTP server with the .NET Generic Host.</summary>
public static class SlimMailServiceCollectionExtensions
{
    /// <summary>
    /// Adds an SMTP server that runs with the host and hands every message to <typeparamref name="THandler"/>
    /// (resolved from the container, so it can take its own dependencies). Register an
    /// <see cref="SlimMail.Auth.IAuthenticator"/> in <paramref name="options"/> to offer AUTH.
    /// </summary>
    /// <param name="services">The container.</param>
    /// <param name="options">Builds the server's options (listeners, limits, TLS, authenticator) from the container.</param>
    /// <param name="drainTimeout">How long open transactions may take to finish when the host stops; 30 seconds if null.</param>
    public static IServiceCollection AddSlimMailSmtp<THandler>(this IServiceCollection services,
        Func<IServiceProvider, SmtpServerOptions> options, TimeSpan? drainTimeout = null)
        where THandler : class, IMessageHandler
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(options);
        services.AddSingleton<THandler>();
        services.AddSingleton(provider => new SlimMailSmtpService(
            options(provider),
            provider.GetRequiredService<THandler>(),
            provider.GetService<ILoggerFactory>() ?? NullLoggerFactory.Instance,
            drainTimeout ?? TimeSpan.FromSeconds(30)));
        services.AddSingleton<IHostedService>(provider => provider.GetRequiredService<SlimMailSmtpService>());
        return services;
    }
}
