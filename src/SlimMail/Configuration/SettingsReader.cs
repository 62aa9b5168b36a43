using System.Globalization;
using System.Net;
using Microsoft.Extensions.Configuration;
using SlimMail.Auth;
using SlimMail.Smtp;

namespace SlimMail.Host.Configuration;

/// <summary>
/// Reads <see cref="SlimMailSettings"/> from configuration and collects every problem with its key, so
/// <c>check-config</c> can list them all at once instead of stopping at the first.
/// </summary>
internal sealed class SettingsReader
{
    private static readonly HashSet<string> TopLevelKeys = new(StringComparer.OrdinalIgnoreCase)
    {
        "Hostname", "DataDirectory", "PidFile", "ShutdownTimeout", "Tls", "Smtp", "Pop3", "Domains", "Users",
        "Deliveries", "Authentication", "Relay", "Sendmail", "Metrics", "Logging",
    };

    private static readonly HashSet<string> SmtpKeys = new(StringComparer.OrdinalIgnoreCase)
    {
        "Listeners", "MaxMessageSize", "MaxRecipients", "MaxConnections", "MaxConnectionsPerAddress",
        "CommandTimeout", "DataTimeout", "MaxErrors", "RequireTlsForAuth",
    };

    private static readonly HashSet<string> ListenerKeys = new(StringComparer.OrdinalIgnoreCase) { "Endpoint", "Role", "ImplicitTls", "ProxyProtocol", "ProxyTrustedNetworks" };
    private static readonly HashSet<string> UserKeys = new(StringComparer.OrdinalIgnoreCase) { "PasswordHash", "Delivery", "Maildir", "FileMode", "Owner", "AllowAnySender" };

    private readonly IConfiguration _configuration;
    private readonly List<ConfigurationProblem> _problems = [];

    private SettingsReader(IConfiguration configuration) => _configuration = configuration;

    /// <summary>Reads the settings; <paramref name="problems"/> lists errors and warnings (settings are null if any error).</summary>
    public static SlimMailSettings? Read(IConfiguration configuration, string? configFile, out IReadOnlyList<ConfigurationProblem> problems)
    {
        var reader = new SettingsReader(configuration);
        SlimMailSettings settings = reader.ReadAll(configFile);
        problems = reader._problems;
        return reader._problems.Exists(p => !p.IsWarning) ? null : settings;
    }

    private SlimMailSettings ReadAll(string? configFile)
    {
        bool zeroConfig = configFile is null;
        WarnUnknown(_configuration, "", TopLevelKeys);

        string hostname = String("Hostname") ?? Dns.GetHostName();
        if (hostname.Length == 0 || hostname.AsSpan().IndexOfAny(" \t\r\n") >= 0)
        {
            Error("Hostname", $"'{hostname}' is not a host name");
        }

        IConfigurationSection smtp = _configuration.GetSection("Smtp");
        WarnUnknown(smtp, "Smtp:", SmtpKeys);
        var smtpSettings = new SmtpSettings
        {
            Listeners = ReadSmtpListeners(smtp.GetSection("Listeners")),
            MaxMessageSize = Long("Smtp:MaxMessageSize", 26_214_400, min: 1024),
            MaxRecipients = Int("Smtp:MaxRecipients", 100, min: 1),
            MaxConnections = Int("Smtp:MaxConnections", 1000, min: 1),
            MaxConnectionsPerAddress = Int("Smtp:MaxConnectionsPerAddress", 50, min: 1),
            CommandTimeout = Duration("Smtp:CommandTimeout", TimeSpan.FromMinutes(5)),
            DataTimeout = Duration("Smtp:DataTimeout", TimeSpan.FromMinutes(10)),
            MaxErrors = Int("Smtp:MaxErrors", 10, min: 1),
            RequireTlsForAuth = Bool("Smtp:RequireTlsForAuth", true),
        };
        if (smtpSettings.Listeners.Count == 0)
        {
            Error("Smtp:Listeners", "no SMTP listener is configured");
        }

        IReadOnlyDictionary<string, UserSettings> users = ReadUsers(zeroConfig);
        var settings = new SlimMailSettings
        {
            Hostname = hostname,
            DataDirectory = String("DataDirectory") ?? "./slimmail-data",
            PidFile = String("PidFile"),
            ShutdownTimeout = Duration("ShutdownTimeout", TimeSpan.FromSeconds(30)),
            Smtp = smtpSettings,
            Pop3Listeners = ReadPop3Listeners(_configuration.GetSection("Pop3:Listeners")),
            Domains = ReadDomains(users),
            Users = users,
            RelayMode = Choice("Relay:Mode", "None", "None", "Mx", "Smarthost"),
            ZeroConfig = zeroConfig,
            ConfigFile = configFile,
        };

        SlimMail.Relay.RelayOptions relay = ReadRelay(settings.RelayMode, hostname);
        settings = settings with { Relay = settings.RelayMode == "None" ? null : relay };

        settings = settings with
        {
            Tls = ReadTls(settings.Smtp, settings.Pop3Listeners),
            Authentication = ReadAuthentication(),
        };
        settings = settings with { Deliveries = ReadDeliveries(users) };
        if (String("Metrics:Endpoint") is { } metrics)
        {
            if (EndpointParser.TryParse(metrics, out IPEndPoint? metricsEndPoint))
            {
                settings = settings with { MetricsEndpoint = metricsEndPoint };
            }
            else
            {
                Error("Metrics:Endpoint", $"'{metrics}' is not host:port");
            }
        }

        return settings;
    }

    private List<SmtpListenerSettings> ReadSmtpListeners(IConfigurationSection section)
    {
        var listeners = new List<SmtpListenerSettings>();
        foreach (IConfigurationSection item in section.GetChildren())
        {
            string key = item.Path;
            WarnUnknown(item, key + ":", ListenerKeys);
            IPEndPoint? endPoint = RequiredEndpoint(key + ":Endpoint");
            string roleText = Choice(key + ":Role", "", "Mx", "Submission", "Local");
            if (roleText.Length == 0)
            {
                Error(key + ":Role", "is required (Mx, Submission or Local)");
                continue;
            }

            var role = Enum.Parse<ListenerRole>(roleText, ignoreCase: true);
            if (role == ListenerRole.Local && endPoint is not null && !IPAddress.IsLoopback(endPoint.Address))
            {
                Error(key + ":Endpoint", $"a Local listener may only bind a loopback address, not {endPoint.Address}");
            }

            bool implicitTls = Bool(key + ":ImplicitTls", false);
            bool proxy = Bool(key + ":ProxyProtocol", false);
            if (implicitTls && role == ListenerRole.Local)
            {
                Error(key + ":ImplicitTls", "a Local listener is plaintext on loopback");
            }

            if (endPoint is not null)
            {
                listeners.Add(new SmtpListenerSettings(endPoint, role, implicitTls, proxy, TrustedNetworks(key)));
            }
        }

        return listeners;
    }

    private List<Pop3ListenerSettings> ReadPop3Listeners(IConfigurationSection section)
    {
        var listeners = new List<Pop3ListenerSettings>();
        foreach (IConfigurationSection item in section.GetChildren())
        {
            string key = item.Path;
            WarnUnknown(item, key + ":", ListenerKeys);
            IPEndPoint? endPoint = RequiredEndpoint(key + ":Endpoint");
            bool proxy = Bool(key + ":ProxyProtocol", false);
            if (endPoint is not null)
            {
                listeners.Add(new Pop3ListenerSettings(endPoint, Bool(key + ":ImplicitTls", false), proxy, TrustedNetworks(key)));
            }
        }

        return listeners;
    }

    private TlsSettings? ReadTls(SmtpSettings smtp, IReadOnlyList<Pop3ListenerSettings> pop3)
    {
        string? certificate = String("Tls:CertificateFile");
        string? key = String("Tls:KeyFile");
        TlsSettings? tls = null;
        if (certificate is not null || key is not null)
        {
            if (certificate is null || key is null)
            {
                Error(certificate is null ? "Tls:CertificateFile" : "Tls:KeyFile", "is required when Tls is set");
            }
            else if (!File.Exists(certificate))
            {
                Error("Tls:CertificateFile", $"'{certificate}' does not exist");
            }
            else if (!File.Exists(key))
            {
                Error("Tls:KeyFile", $"'{key}' does not exist");
            }
            else
            {
                try
                {
                    SlimMail.Transport.TlsCertificateProvider.Load(certificate, key);
                    tls = new TlsSettings(certificate, key);
                }
                catch (Exception e) when (e is System.Security.Cryptography.CryptographicException or IOException or ArgumentException or UnauthorizedAccessException)
                {
                    Error("Tls:CertificateFile", $"cannot use '{certificate}' with '{key}': {e.Message}");
                }
            }
        }

        bool configured = certificate is not null || key is not null;
        for (int i = 0; i < smtp.Listeners.Count; i++)
        {
            SmtpListenerSettings listener = smtp.Listeners[i];
            if (listener.ImplicitTls && !configured)
            {
                Error($"Smtp:Listeners:{i}:ImplicitTls", "needs Tls:CertificateFile and Tls:KeyFile");
            }

            if (listener.Role == ListenerRole.Submission && !configured && smtp.RequireTlsForAuth && !IPAddress.IsLoopback(listener.EndPoint.Address))
            {
                Error($"Smtp:Listeners:{i}:Role", "a Submission listener off loopback needs Tls: AUTH is only offered inside TLS (RequireTlsForAuth)");
            }
        }

        for (int i = 0; i < pop3.Count; i++)
        {
            if (pop3[i].ImplicitTls && !configured)
            {
                Error($"Pop3:Listeners:{i}:ImplicitTls", "needs Tls:CertificateFile and Tls:KeyFile");
            }
        }

        return tls;
    }

    private AuthenticationSettings ReadAuthentication()
    {
        WarnUnknown(_configuration.GetSection("Authentication"), "Authentication:", new HashSet<string>(StringComparer.OrdinalIgnoreCase) { "Type", "Command", "Timeout" });
        string type = Choice("Authentication:Type", "Users", "Users", "External");
        string? command = String("Authentication:Command");
        if (type == "External")
        {
            CheckCommand("Authentication:Command", command, "Authentication:Type is External");
        }

        return new AuthenticationSettings(type, command, Duration("Authentication:Timeout", TimeSpan.FromSeconds(10)));
    }

    private Dictionary<string, UserSettings> ReadUsers(bool zeroConfig)
    {
        var users = new Dictionary<string, UserSettings>(StringComparer.Ordinal);
        foreach (IConfigurationSection item in _configuration.GetSection("Users").GetChildren())
        {
            string key = item.Path;
            WarnUnknown(item, key + ":", UserKeys);
            if (item.Key.AsSpan().IndexOfAny("/\\:") >= 0 || item.Key is "." or "..")
            {
                Error(key, "a user name may not contain '/', '\\' or ':'");
                continue;
            }

            string? hash = String(key + ":PasswordHash");
            if (hash is not null && !PasswordHasher.IsValidHash(hash))
            {
                Error(key + ":PasswordHash", "is not a hash from 'slimmail hash-password'");
            }

            UnixFileMode mode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            if (String(key + ":FileMode") is { } modeText)
            {
                if (!TryParseOctal(modeText, out mode))
                {
                    Error(key + ":FileMode", $"'{modeText}' is not an octal file mode such as \"0600\"");
                }
            }

            string? owner = String(key + ":Owner");
            if (owner is not null && OperatingSystem.IsLinux() && SlimMail.Delivery.MaildirOwner.Resolve(owner) is null)
            {
                Error(key + ":Owner", $"'{owner}' is not a known user or user:group");
            }

            users[item.Key] = new UserSettings
            {
                PasswordHash = hash,
                Delivery = String(key + ":Delivery"),
                Maildir = String(key + ":Maildir"),
                FileMode = mode,
                Owner = owner,
                AllowAnySender = Bool(key + ":AllowAnySender", false),
            };
        }

        if (zeroConfig && !users.ContainsKey(SlimMail.Delivery.RecipientPolicy.LocalUser))
        {
            users[SlimMail.Delivery.RecipientPolicy.LocalUser] = new UserSettings();
        }

        return users;
    }

    private Dictionary<string, IReadOnlyDictionary<string, string>> ReadDomains(IReadOnlyDictionary<string, UserSettings> users)
    {
        var domains = new Dictionary<string, IReadOnlyDictionary<string, string>>(StringComparer.OrdinalIgnoreCase);
        foreach (IConfigurationSection domain in _configuration.GetSection("Domains").GetChildren())
        {
            WarnUnknown(domain, domain.Path + ":", new HashSet<string>(StringComparer.OrdinalIgnoreCase) { "Mailboxes" });
            if (SlimMail.Delivery.MailRouting.NormalizeDomain(domain.Key) is null
                || !AddressParser.IsDomain(System.Text.Encoding.UTF8.GetBytes(domain.Key)))
            {
                Error(domain.Path, $"'{domain.Key}' is not a domain name");
                continue;
            }

            var mailboxes = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
            foreach (IConfigurationSection mailbox in domain.GetSection("Mailboxes").GetChildren())
            {
                string? user = mailbox.Value;
                if (string.IsNullOrEmpty(user))
                {
                    Error(mailbox.Path, "must name a user");
                }
                else if (!users.ContainsKey(user))
                {
                    Error(mailbox.Path, $"user '{user}' is not defined under Users");
                }
                else
                {
                    mailboxes[mailbox.Key] = user;
                }
            }

            domains[domain.Key] = mailboxes;
        }

        return domains;
    }

    private Dictionary<string, DeliverySettings> ReadDeliveries(IReadOnlyDictionary<string, UserSettings> users)
    {
        var known = new HashSet<string>(StringComparer.OrdinalIgnoreCase) { "Type", "Command", "Timeout", "ConnectionString" };
        var deliveries = new Dictionary<string, DeliverySettings>(StringComparer.Ordinal);
        foreach (IConfigurationSection delivery in _configuration.GetSection("Deliveries").GetChildren())
        {
            WarnUnknown(delivery, delivery.Path + ":", known);
            string type = Choice(delivery.Path + ":Type", "Maildir", "Maildir", "Pipe", "PostgreSql");
            string? command = String(delivery.Path + ":Command");
            string? connectionString = String(delivery.Path + ":ConnectionString");
            if (type == "Pipe")
            {
                CheckCommand(delivery.Path + ":Command", command, "Type is Pipe");
            }
            else if (type == "PostgreSql")
            {
                if (connectionString is null)
                {
                    Error(delivery.Path + ":ConnectionString", "is required when Type is PostgreSql");
                }
                else
                {
                    try
                    {
                        _ = new Npgsql.NpgsqlConnectionStringBuilder(connectionString);
                    }
                    catch (ArgumentException e)
                    {
                        Error(delivery.Path + ":ConnectionString", "is not a PostgreSQL connection string: " + e.Message);
                    }
                }
            }

            deliveries[delivery.Key] = new DeliverySettings(delivery.Key, type, command, Duration(delivery.Path + ":Timeout", TimeSpan.FromMinutes(1)), connectionString);
        }

        foreach ((string user, UserSettings settings) in users)
        {
            if (settings.Delivery is { } delivery && !deliveries.ContainsKey(delivery))
            {
                Error($"Users:{user}:Delivery", $"'{delivery}' is not defined under Deliveries");
            }
        }

        return deliveries;
    }

    // Read (and checked) whatever the mode, so a mistake shows before the relay is switched on.
    private SlimMail.Relay.RelayOptions ReadRelay(string mode, string hostname)
    {
        WarnUnknown(_configuration.GetSection("Relay"), "Relay:", new HashSet<string>(StringComparer.OrdinalIgnoreCase)
        {
            "Mode", "Smarthost", "Username", "Password", "ImplicitTls", "RetryDelays", "MaxQueueTime", "DnsServers",
            "MaxConcurrentDeliveries", "MaxConcurrentPerDestination", "MxPort", "DelayWarningTime",
        });
        var relay = new SlimMail.Relay.RelayOptions
        {
            Hostname = hostname,
            Mode = mode == "Mx" ? SlimMail.Relay.RelayMode.Mx : SlimMail.Relay.RelayMode.Smarthost,
            Username = String("Relay:Username"),
            Password = String("Relay:Password"),
            ImplicitTls = Bool("Relay:ImplicitTls", false),
            MaxQueueTime = Duration("Relay:MaxQueueTime", TimeSpan.FromDays(5)),
            MaxConcurrentDeliveries = Int("Relay:MaxConcurrentDeliveries", 20, min: 1),
            MaxConcurrentPerDestination = Int("Relay:MaxConcurrentPerDestination", 4, min: 1),
            MxPort = Int("Relay:MxPort", 25, min: 1),
            DelayWarningTime = String("Relay:DelayWarningTime") is null ? null : Duration("Relay:DelayWarningTime", TimeSpan.FromHours(4)),
        };
        if (String("Relay:Smarthost") is { } smarthost)
        {
            if (EndpointParser.TryParseHost(smarthost, out DnsEndPoint? endPoint))
            {
                relay = relay with { Smarthost = endPoint };
            }
            else
            {
                Error("Relay:Smarthost", $"'{smarthost}' is not host:port");
            }
        }
        else if (mode == "Smarthost")
        {
            Error("Relay:Smarthost", "is required when Relay:Mode is Smarthost");
        }

        if (relay.Password is not null && relay.Username is null)
        {
            Error("Relay:Username", "is required when Relay:Password is set");
        }

        var delays = new List<TimeSpan>();
        foreach (IConfigurationSection item in _configuration.GetSection("Relay:RetryDelays").GetChildren())
        {
            if (TimeSpan.TryParse(item.Value, CultureInfo.InvariantCulture, out TimeSpan delay) && delay > TimeSpan.Zero)
            {
                delays.Add(delay);
            }
            else
            {
                Error(item.Path, $"'{item.Value}' is not a positive duration such as 00:05:00");
            }
        }

        if (delays.Count > 0)
        {
            relay = relay with { RetryDelays = delays };
        }

        var dnsServers = new List<IPEndPoint>();
        foreach (IConfigurationSection item in _configuration.GetSection("Relay:DnsServers").GetChildren())
        {
            string text = item.Value ?? "";
            if (IPAddress.TryParse(text, out IPAddress? address))
            {
                dnsServers.Add(new IPEndPoint(address, 53));
            }
            else if (IPEndPoint.TryParse(text, out IPEndPoint? endPoint) && endPoint.Port != 0)
            {
                dnsServers.Add(endPoint);
            }
            else
            {
                Error(item.Path, $"'{text}' is not an IP address or IP:port");
            }
        }

        return relay with { DnsServers = dnsServers };
    }

    // A program SlimMail runs: split like a shell would, so a quoting mistake is reported now, not at the first message.
    private void CheckCommand(string key, string? command, string requiredWhen)
    {
        if (command is null)
        {
            Error(key, "is required when " + requiredWhen);
            return;
        }

        try
        {
            if (SlimMail.Processes.CommandLine.Split(command).Count == 0)
            {
                Error(key, "is empty");
            }
        }
        catch (FormatException e)
        {
            Error(key, e.Message);
        }
    }

    // The proxies a ProxyProtocol listener believes: loopback unless configured (a load balancer's network).
    private IPNetwork[] TrustedNetworks(string listenerKey)
    {
        var networks = new List<IPNetwork>();
        foreach (IConfigurationSection item in _configuration.GetSection(listenerKey + ":ProxyTrustedNetworks").GetChildren())
        {
            string text = item.Value ?? "";
            if (IPNetwork.TryParse(text, out IPNetwork network))
            {
                networks.Add(network);
            }
            else if (IPAddress.TryParse(text, out IPAddress? address))
            {
                networks.Add(new IPNetwork(address, address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 32 : 128));
            }
            else
            {
                Error(item.Path, $"'{text}' is not an address or network such as 10.0.0.0/8");
            }
        }

        return networks.Count > 0 ? [.. networks] : [IPNetwork.Parse("127.0.0.0/8"), IPNetwork.Parse("::1/128")];
    }

    // ---- value readers -----------------------------------------------------------------------

    private string? String(string key) => _configuration[key] is { Length: > 0 } value ? value : null;

    private IPEndPoint? RequiredEndpoint(string key)
    {
        string? text = String(key);
        if (text is null)
        {
            Error(key, "is required (host:port)");
            return null;
        }

        if (!EndpointParser.TryParse(text, out IPEndPoint? endPoint))
        {
            Error(key, $"'{text}' is not host:port (IPv6 in brackets: [::1]:2525)");
        }

        return endPoint;
    }

    private int Int(string key, int fallback, int min) => (int)Long(key, fallback, min, int.MaxValue);

    private long Long(string key, long fallback, long min, long max = long.MaxValue)
    {
        string? text = String(key);
        if (text is null)
        {
            return fallback;
        }

        if (!long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out long value) || value < min || value > max)
        {
            Error(key, $"'{text}' is not a whole number from {min} to {max}");
            return fallback;
        }

        return value;
    }

    private bool Bool(string key, bool fallback)
    {
        string? text = String(key);
        if (text is null)
        {
            return fallback;
        }

        if (!bool.TryParse(text, out bool value))
        {
            Error(key, $"'{text}' is not true or false");
            return fallback;
        }

        return value;
    }

    private TimeSpan Duration(string key, TimeSpan fallback)
    {
        string? text = String(key);
        if (text is null)
        {
            return fallback;
        }

        if (!TimeSpan.TryParse(text, CultureInfo.InvariantCulture, out TimeSpan value) || value <= TimeSpan.Zero)
        {
            Error(key, $"'{text}' is not a positive duration such as 00:05:00");
            return fallback;
        }

        return value;
    }

    private string Choice(string key, string fallback, params string[] allowed)
    {
        string? text = String(key);
        if (text is null)
        {
            return fallback;
        }

        foreach (string option in allowed)
        {
            if (string.Equals(option, text, StringComparison.OrdinalIgnoreCase))
            {
                return option;
            }
        }

        Error(key, $"'{text}' is not one of {string.Join(", ", allowed)}");
        return fallback;
    }

    private static bool TryParseOctal(string text, out UnixFileMode mode)
    {
        mode = 0;
        if (text.Length is 0 or > 4)
        {
            return false;
        }

        int value = 0;
        foreach (char c in text)
        {
            if (c is < '0' or > '7')
            {
                return false;
            }

            value = (value * 8) + (c - '0');
        }

        mode = (UnixFileMode)value;
        return true;
    }

    private void WarnUnknown(IConfiguration section, string prefix, HashSet<string> known)
    {
        foreach (IConfigurationSection child in section.GetChildren())
        {
            if (!known.Contains(child.Key))
            {
                // An empty key ("": ...) is legal JSON; name it so the line still says where it is.
                Warn(prefix + (child.Key.Length == 0 ? "(empty key)" : child.Key), "unknown key (ignored)");
            }
        }
    }

    private void Error(string key, string message) => _problems.Add(new ConfigurationProblem(key, message));

    private void Warn(string key, string message) => _problems.Add(new ConfigurationProblem(key, message, IsWarning: true));
}
