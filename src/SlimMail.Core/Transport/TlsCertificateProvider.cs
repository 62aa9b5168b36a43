using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging;

namespace SlimMail.Transport;

/// <summary>
/// The server certificate from PEM files (RSA or ECDSA; intermediate certificates after the leaf in the
/// certificate file), offered with TLS 1.2 and 1.3 only. The files are checked for changes at most once
/// a second and reloaded without a restart; a broken new pair is logged and the old one kept.
/// </summary>
public sealed partial class TlsCertificateProvider
{
    private readonly string _certificateFile;
    private readonly string _keyFile;
    private readonly ILogger _logger;
    private readonly object _lock = new();
    private SslServerAuthenticationOptions _options;
    private (DateTime Certificate, DateTime Key) _stamps;
    private long _nextCheck;

    /// <summary>Loads the pair now; throws if it cannot be used.</summary>
    public TlsCertificateProvider(string certificateFile, string keyFile, ILogger? logger = null)
    {
        _certificateFile = Path.GetFullPath(certificateFile);
        _keyFile = Path.GetFullPath(keyFile);
        _logger = logger ?? Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;
        _stamps = Stamps();
        _options = Load(_certificateFile, _keyFile);
    }

    /// <summary>The leaf certificate in use.</summary>
    public X509Certificate2 Certificate => _options.ServerCertificateContext!.TargetCertificate;

    /// <summary>Options for one server handshake, reloaded first if the files changed.</summary>
    public SslServerAuthenticationOptions GetOptions()
    {
        long now = Environment.TickCount64;
        if (now >= Volatile.Read(ref _nextCheck))
        {
            lock (_lock)
            {
                if (now >= _nextCheck)
                {
                    _nextCheck = now + 1000;
                    ReloadIfChanged();
                }
            }
        }

        return Volatile.Read(ref _options);
    }

    /// <summary>Loads and checks a certificate/key pair; throws <see cref="System.Security.Cryptography.CryptographicException"/> or <see cref="IOException"/> if unusable.</summary>
    public static SslServerAuthenticationOptions Load(string certificateFile, string keyFile)
    {
        using var leafWithEphemeralKey = X509Certificate2.CreateFromPemFile(certificateFile, keyFile);
        // Re-import so the private key is usable by SslStream on every platform.
        X509Certificate2 leaf = X509CertificateLoader.LoadPkcs12(leafWithEphemeralKey.Export(X509ContentType.Pkcs12), null);
        var chain = new X509Certificate2Collection();
        chain.ImportFromPemFile(certificateFile);
        var intermediates = new X509Certificate2Collection();
        foreach (X509Certificate2 certificate in chain)
        {
            if (!certificate.RawDataMemory.Span.SequenceEqual(leaf.RawDataMemory.Span))
            {
                intermediates.Add(certificate);
            }
        }

        return new SslServerAuthenticationOptions
        {
            ServerCertificateContext = SslStreamCertificateContext.Create(leaf, intermediates, offline: true),
            EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
            ClientCertificateRequired = false,
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
        };
    }

    private void ReloadIfChanged()
    {
        (DateTime, DateTime) stamps = Stamps();
        if (stamps == _stamps)
        {
            return;
        }

        try
        {
            Volatile.Write(ref _options, Load(_certificateFile, _keyFile));
            _stamps = stamps;
            LogReloaded(_logger, _certificateFile, Certificate.Subject, Certificate.NotAfter);
        }
        catch (Exception e) when (e is System.Security.Cryptography.CryptographicException or IOException or ArgumentException)
        {
            // Often a half-written renewal (certificate replaced, key not yet): try again on the next check.
            LogReloadFailed(_logger, _certificateFile, e.Message);
        }
    }

    private (DateTime, DateTime) Stamps() => (File.GetLastWriteTimeUtc(_certificateFile), File.GetLastWriteTimeUtc(_keyFile));

    [LoggerMessage(Level = LogLevel.Information, Message = "TLS certificate {File} reloaded: {Subject}, valid until {NotAfter:u}")]
    private static partial void LogReloaded(ILogger logger, string file, string subject, DateTime notAfter);

    [LoggerMessage(Level = LogLevel.Warning, Message = "TLS certificate {File} changed but cannot be loaded ({Error}); the previous one stays in use")]
    private static partial void LogReloadFailed(ILogger logger, string file, string error);
}
