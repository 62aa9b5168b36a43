using Microsoft.Extensions.Configuration;

namespace SlimMail.Host.Configuration;

/// <summary>
/// Builds the raw configuration: the JSON file (or, when there is none, the zero-configuration defaults),
/// then <c>SLIMMAIL__</c> environment variables, then <c>--Key=value</c> arguments, each overriding the last.
/// </summary>
internal static class ConfigurationSources
{
    public const string DefaultConfigFile = "/etc/slimmail/slimmail.json";
    public const string EnvironmentPrefix = "SLIMMAIL__";

    /// <summary>The zero-configuration defaults of the product contract.</summary>
    public static readonly IReadOnlyDictionary<string, string?> ZeroConfigDefaults = new Dictionary<string, string?>
    {
        ["Smtp:Listeners:0:Endpoint"] = "127.0.0.1:2525",
        ["Smtp:Listeners:0:Role"] = "Local",
        ["Pop3:Listeners:0:Endpoint"] = "127.0.0.1:1110",
    };

    /// <summary>Finds the configuration file: <paramref name="explicitFile"/>, else the default path if it exists, else none.</summary>
    public static string? FindConfigFile(string? explicitFile) =>
        explicitFile ?? (File.Exists(DefaultConfigFile) ? DefaultConfigFile : null);

    public static IConfigurationRoot Build(string? configFile, IReadOnlyList<string> overrides)
    {
        var builder = new ConfigurationBuilder();
        if (configFile is null)
        {
            builder.AddInMemoryCollection(ZeroConfigDefaults);
        }
        else
        {
            builder.AddJsonFile(Path.GetFullPath(configFile), optional: false, reloadOnChange: false);
        }

        builder.AddEnvironmentVariables(EnvironmentPrefix);
        builder.AddCommandLine(overrides.ToArray());
        return builder.Build();
    }
}
