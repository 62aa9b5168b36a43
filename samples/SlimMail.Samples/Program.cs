// (c) The Generic Host integration: an SMTP server in a few lines, its handler resolved from the container.
//
//   slimmail-samples serve   --Encryption:Key=BASE64 [--Smtp:Endpoint=127.0.0.1:2526] [--Encryption:OutputDirectory=DIR]
//   slimmail-samples decrypt FILE  (key from --Encryption:Key or SLIMMAIL_SAMPLE_KEY)
using System.Net;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using SlimMail.Samples;
using SlimMail.Smtp;

if (args.Length > 0 && args[0] == "decrypt")
{
    IConfiguration keyConfig = new ConfigurationBuilder().AddEnvironmentVariables("SLIMMAIL_SAMPLE_").AddCommandLine(args[2..]).Build();
    byte[] key = Convert.FromBase64String(keyConfig["Encryption:Key"] ?? keyConfig["KEY"] ?? "");
    using FileStream file = File.OpenRead(args[1]);
    using Stream stdout = Console.OpenStandardOutput();
    stdout.Write(EncryptedMessageFile.Decrypt(file, key));
    return 0;
}

HostApplicationBuilder builder = Host.CreateApplicationBuilder(args.Length > 0 && args[0] == "serve" ? args[1..] : args);
builder.Services.Configure<EncryptionOptions>(builder.Configuration.GetSection("Encryption"));
builder.Services.AddSlimMailSmtp<EncryptingMessageHandler>(services => new SmtpServerOptions
{
    Hostname = "encrypting.example.test",
    Listeners = [new SmtpListenerOptions(IPEndPoint.Parse(builder.Configuration["Smtp:Endpoint"] ?? "127.0.0.1:2526"), ListenerRole.Local)],
});

using IHost host = builder.Build();
await host.StartAsync();
foreach (IPEndPoint endPoint in host.Services.GetRequiredService<SlimMail.Hosting.SlimMailSmtpService>().EndPoints)
{
    Console.WriteLine($"listening on {endPoint}");
}

await host.WaitForShutdownAsync();
return 0;
