using SlimMail.Auth;

namespace SlimMail.Tests.Core.Harness;

/// <summary>Accepts alice/secret; "temp" gives a temporary failure.</summary>
internal sealed class FakeAuthenticator : IAuthenticator
{
    public ValueTask<AuthResult> AuthenticateAsync(string user, string password, CancellationToken cancellationToken) =>
        ValueTask.FromResult(user == "temp" ? AuthResult.TemporaryFailure
            : user == "alice" && password == "secret" ? AuthResult.Success("alice") : AuthResult.Failure);
}
