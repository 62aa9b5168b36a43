using System.Text;
using Microsoft.Extensions.Configuration;
using SlimMail.Host.Configuration;
using SlimMail.Tests.Core.Fuzzing;

namespace SlimMail.Tests;

public class ConfigFuzzTests
{
    [Fact]
    public void The_configuration_reader_reports_problems_for_any_json_and_never_throws()
    {
        int seconds = int.TryParse(Environment.GetEnvironmentVariable("SLIMMAIL_FUZZ_SECONDS"), out int s) ? s : 3;
        var fuzzer = new MutationFuzzer(MutationFuzzer.LoadCorpus("config"), Environment.TickCount);
        int parsed = 0;
        fuzzer.Run(TimeSpan.FromSeconds(seconds), input =>
        {
            IConfigurationRoot configuration;
            try
            {
                configuration = new ConfigurationBuilder().AddJsonStream(new MemoryStream(input)).Build();
            }
            catch (Exception e) when (e is FormatException or InvalidDataException or System.Text.Json.JsonException)
            {
                return; // Not JSON: check-config reports the file as unreadable.
            }

            parsed++;
            SlimMailSettings? settings = SettingsReader.Read(configuration, "fuzz.json", out IReadOnlyList<ConfigurationProblem> problems);
            Assert.True(settings is not null || problems.Any(p => !p.IsWarning));
            Assert.All(problems, p => Assert.False(string.IsNullOrEmpty(p.Key)));
        }, maxLength: 8192);
        Assert.True(parsed > 0);
    }
}
