using Microsoft.Extensions.Logging;
using SlimMail.Auth;
using SlimMail.Delivery;
using SlimMail.Host.Configuration;
using SlimMail.Transport;

namespace SlimMail.Host.Hosting;

/// <summary>The TLS certificate, the authenticator and the failure throttle, built once and shared by SMTP and POP3.</summary>
internal sealed class SecurityWiring
{
    public SecurityWiring(SlimMailSettings settings, ILoggerFactory loggerFactory)
    {
        if (settings.Tls is { } tls)
        {
            Tls = new TlsCertificateProvider(tls.CertificateFile, tls.KeyFile, loggerFactory.CreateLogger("SlimMail.Tls"));
        }

        DeliveryLogger = loggerFactory.CreateLogger("SlimMail.Delivery");
    }

    public TlsCertificateProvider? Tls { get; }

    public ILogger DeliveryLogger { get; }

    public static IAuthenticator CreateAuthenticator(SlimMailSettings settings) => settings.Authentication.Type == "External"
        ? new ExternalAuthenticator(settings.Authentication.Command!, settings.Authentication.Timeout)
        : new PasswordAuthenticator(
            settings.Users.Where(u => u.Value.PasswordHash is not null).ToDictionary(u => u.Key, u => u.Value.PasswordHash!),
            LocalSecret(settings));

    public AuthThrottle Throttle { get; } = new();

    // Zero-configuration mode: user "local" logs in with the generated password in <DataDirectory>/local-password.
    private static Func<string, string?>? LocalSecret(SlimMailSettings settings)
    {
        if (!settings.ZeroConfig)
        {
            return null;
        }

        string file = Path.Combine(Path.GetFullPath(settings.DataDirectory), LocalPassword.FileName);
        return user => user == RecipientPolicy.LocalUser && File.Exists(file) ? LocalPassword.Read(file) : null;
    }
}
