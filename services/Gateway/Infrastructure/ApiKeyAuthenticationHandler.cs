using System.Security.Claims;
using System.Text.Encodings.Web;
using DataMarket.Gateway.Application;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;

namespace DataMarket.Gateway.Infrastructure;

/// <summary>
/// Signs a caller in by API key: <c>Authorization: Bearer dmk_...</c> or <c>X-Api-Key: dmk_...</c>. No header that
/// merely names an account (such as the old <c>X-Actor-Id</c>) is accepted.
/// </summary>
public sealed class ApiKeyAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder, AccountService accounts)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "ApiKey";

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var presented = Request.Headers["X-Api-Key"].ToString();
        var authorization = Request.Headers.Authorization.ToString();
        if (presented.Length == 0 && authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            presented = authorization["Bearer ".Length..].Trim();
        }

        if (presented.Length == 0)
        {
            return AuthenticateResult.NoResult();
        }

        var account = await accounts.AuthenticateAsync(presented, Context.RequestAborted);
        if (account is null)
        {
            // The same answer for malformed, unknown, forged and revoked keys: nothing to learn from it.
            return AuthenticateResult.Fail("the API key is not valid");
        }

        var identity = new ClaimsIdentity(
            [new Claim("sub", account.Id), new Claim("role", account.Role), new Claim("name", account.Name)],
            SchemeName, "sub", "role");
        return AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), SchemeName));
    }
}
