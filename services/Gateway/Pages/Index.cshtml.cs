using DataMarket.Gateway.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.Extensions.DependencyInjection;

namespace DataMarket.Gateway.Pages;

public sealed class IndexModel : PageModel
{
    /// <summary>A signed-in visitor goes straight to their role's page.</summary>
    public async Task<IActionResult> OnGetAsync()
    {
        var session = await HttpContext.AuthenticateAsync(GatewayExtensions.WebScheme);
        return session.Succeeded ? Redirect(WebPaths.Home(session.Principal!.FindFirst("role")?.Value)) : Page();
    }
}
