using System.Text.Json;
using Microsoft.Extensions.Configuration;
using SlimMail.Host.Configuration;

namespace SlimMail.Host.Commands;

/// <summary>Finds, reads and validates the configuration for a command, printing every problem.</summary>
internal static class ConfigurationLoader
{
    /// <summary>The settings, or null (after printing the problems to stderr) when they are not usable.</summary>
    public static (SlimMailSettings? Settings, IConfigurationRoot? Raw) Load(string? explicitFile, IReadOnlyList<string> overrides, TextWriter errors)
    {
        string? file = ConfigurationSources.FindConfigFile(explicitFile);
        IConfigurationRoot raw;
        try
        {
            raw = ConfigurationSources.Build(file, overrides);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or InvalidDataException or JsonException or FormatException or UnauthorizedAccessException)
        {
            errors.WriteLine($"error: {file}: {(e.InnerException ?? e).Message}");
            return (null, null);
        }

        SlimMailSettings? settings = SettingsReader.Read(raw, file, out IReadOnlyList<ConfigurationProblem> problems);
        foreach (ConfigurationProblem problem in problems)
        {
            errors.WriteLine(problem.ToString());
        }

        return (settings, raw);
    }
}
